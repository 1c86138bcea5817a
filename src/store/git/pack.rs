//! Writes the new objects of one commit as one pack with its version-2 index, the way git's
//! own fast paths do (`git fast-import` for new files): no deltas, each object deflated on its
//! own, hashed and compressed on every core, then written in one pass. A push hands these
//! objects on as they are (`pack.window=0` makes `git pack-objects` reuse them without a
//! delta search), and the upload gateway can send the same pack. It owns the pack and index
//! formats; it must not decide which objects a commit needs.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::{Compress, Compression, FlushCompress, Status};
use sha1::{Digest, Sha1};

use crate::store::StoreError;
use crate::store::object::{Kind, Oid, hex, object_id};

/// zlib level of pack entries. Level 1 deflates about three times faster than git's default
/// (6) at a cost of about a sixth more bytes on record files (measured in decisions.md).
pub const LEVEL: u32 = 1;

/// Objects below this many are compressed on one thread: spawning costs more than it saves.
const PARALLEL_FROM: usize = 64;

/// One object to pack: its kind, id and body.
#[derive(Debug)]
pub struct PackObject {
    /// The kind.
    pub kind: Kind,
    /// Its id (already computed when trees were built).
    pub id: Oid,
    /// The body.
    pub body: Vec<u8>,
}

impl PackObject {
    /// An object, hashing `body`.
    pub fn new(kind: Kind, body: Vec<u8>) -> PackObject {
        PackObject {
            kind,
            id: object_id(kind, &body),
            body,
        }
    }
}

/// The number of objects a version-2 pack index at `idx` lists (the last entry of its
/// fan-out table), or `None` when it cannot be read as one.
pub fn objects_in_index(idx: &Path) -> Option<u32> {
    use std::io::Read as _;
    let mut head = [0u8; 8 + 256 * 4];
    std::fs::File::open(idx).ok()?.read_exact(&mut head).ok()?;
    if head[..8] != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
        return None;
    }
    let last = &head[8 + 255 * 4..];
    Some(u32::from_be_bytes([last[0], last[1], last[2], last[3]]))
}

/// A pack on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenPack {
    /// The `.pack` file.
    pub pack: PathBuf,
    /// Objects in it.
    pub objects: usize,
    /// Its size in bytes.
    pub bytes: u64,
}

/// One packed entry: the id, the entry bytes (type and size header, then the deflated body)
/// and their CRC-32, which the index records and `git pack-objects` checks before reuse.
struct Entry {
    id: Oid,
    bytes: Vec<u8>,
    crc: u32,
}

/// The type and size header of a pack entry.
fn entry_header(kind: Kind, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut size = size as u64;
    let mut byte = ((kind as u8) << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
    out
}

fn deflate(obj: &PackObject) -> Result<Entry, std::io::Error> {
    thread_local! {
        // One deflate state per thread, reset for each object: a new one per object cost an
        // allocation and a clear of its window and tables, more than deflating a small file.
        static ZLIB: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), true));
    }
    let mut bytes = entry_header(obj.kind, obj.body.len());
    bytes.reserve(obj.body.len() / 2 + 64);
    ZLIB.with_borrow_mut(|z| {
        z.reset();
        let mut input = obj.body.as_slice();
        loop {
            let before = z.total_in();
            let status = z
                .compress_vec(input, &mut bytes, FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            input = &input[(z.total_in() - before) as usize..];
            match status {
                Status::StreamEnd => return Ok::<(), std::io::Error>(()),
                Status::Ok | Status::BufError => bytes.reserve(bytes.capacity().max(256)),
            }
        }
    })?;
    let crc = crc32fast::hash(&bytes);
    Ok(Entry {
        id: obj.id,
        bytes,
        crc,
    })
}

/// Deflates every object, on all cores when there are enough of them, keeping their order.
fn deflate_all(objects: &[&PackObject]) -> Result<Vec<Entry>, std::io::Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || objects.len() < PARALLEL_FROM {
        return objects.iter().map(|o| deflate(o)).collect();
    }
    let chunk = objects.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = objects
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|o| deflate(o))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(objects.len());
        for w in workers {
            out.extend(
                w.join()
                    .map_err(|_| std::io::Error::other("a deflate worker panicked"))??,
            );
        }
        Ok(out)
    })
}

/// The version-2 index of `entries` at `offsets` in a pack whose checksum is `pack_sum`.
fn index(entries: &[Entry], offsets: &[u64], pack_sum: &Oid) -> Vec<u8> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| entries[*a].id.cmp(&entries[*b].id));
    let mut out = Vec::with_capacity(8 + 1024 + order.len() * 28 + 40);
    out.extend_from_slice(b"\xfftOc");
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for &i in &order {
        fanout[usize::from(entries[i].id[0])] += 1;
    }
    let mut total = 0u32;
    for n in fanout {
        total += n;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for &i in &order {
        out.extend_from_slice(&entries[i].id);
    }
    for &i in &order {
        out.extend_from_slice(&entries[i].crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for &i in &order {
        let off = offsets[i];
        if off < 0x8000_0000 {
            out.extend_from_slice(&(off as u32).to_be_bytes());
        } else {
            let slot = 0x8000_0000 | large.len() as u32;
            out.extend_from_slice(&slot.to_be_bytes());
            large.push(off);
        }
    }
    for off in large {
        out.extend_from_slice(&off.to_be_bytes());
    }
    out.extend_from_slice(pack_sum);
    let idx_sum: Oid = Sha1::digest(&out).into();
    out.extend_from_slice(&idx_sum);
    out
}

/// Writes `objects` as `pack-<checksum>.pack` and `.idx` in `pack_dir` (the repository's
/// `objects/pack`): both are written under temporary names and renamed, the index last, so
/// a reader never sees a pack without its index.
pub fn write_pack(pack_dir: &Path, objects: &[PackObject]) -> Result<WrittenPack, StoreError> {
    let local = |what: &str, e: &dyn std::fmt::Display| StoreError::Local {
        detail: format!("cannot {what} in {}: {e}", pack_dir.display()),
    };
    // The same object twice (two equal files) is packed once: git refuses duplicates.
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&PackObject> = objects.iter().filter(|o| seen.insert(o.id)).collect();
    let entries = deflate_all(&unique).map_err(|e| local("compress objects", &e))?;
    let mut pack =
        Vec::with_capacity(12 + entries.iter().map(|e| e.bytes.len()).sum::<usize>() + 20);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    let mut offsets = Vec::with_capacity(entries.len());
    for e in &entries {
        offsets.push(pack.len() as u64);
        pack.extend_from_slice(&e.bytes);
    }
    let sum: Oid = Sha1::digest(&pack).into();
    pack.extend_from_slice(&sum);
    let idx = index(&entries, &offsets, &sum);
    let name = format!("pack-{}", hex(&sum));
    let final_pack = pack_dir.join(format!("{name}.pack"));
    let final_idx = pack_dir.join(format!("{name}.idx"));
    std::fs::create_dir_all(pack_dir).map_err(|e| local("create the pack directory", &e))?;
    let write = |path: &Path, bytes: &[u8]| -> Result<(), StoreError> {
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| local("create a pack file", &e))?;
        f.write_all(bytes)
            .map_err(|e| local("write a pack file", &e))?;
        f.sync_data().map_err(|e| local("sync a pack file", &e))?;
        std::fs::rename(&tmp, path).map_err(|e| local("rename a pack file", &e))
    };
    write(&final_pack, &pack)?;
    write(&final_idx, &idx)?;
    Ok(WrittenPack {
        pack: final_pack,
        objects: entries.len(),
        bytes: pack.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes are split into the 4-bit first group and 7-bit continuations.
    #[test]
    fn entry_headers_follow_the_pack_format() {
        assert_eq!(entry_header(Kind::Blob, 5), vec![0x35]);
        assert_eq!(entry_header(Kind::Blob, 16), vec![0xb0, 0x01]);
        assert_eq!(entry_header(Kind::Commit, 300), vec![0x9c, 0x12]);
    }
}
