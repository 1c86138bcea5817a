//! The simulator's XML: a small element-tree reader for import bodies, export files and
//! record files, and the one writer every XML reply and file of the simulator goes through.
//! Both refuse the control characters XML 1.0 cannot carry. It must not know what any
//! element means.

mod read;
mod write;

pub use read::{Element, ElementStream, XmlError, parse};
pub use write::{Empty, Forbidden, Style, Unwritable, XmlWriter, escape_into, is_xml_char};
