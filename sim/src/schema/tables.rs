//! The simulator's table catalogue and field lists: every table mwsync can track with its
//! record element and natural key, and for the tables the fake serves, their fields in server
//! order (names from the MoneyWorks manual's Appendix A, lowercase). It owns these facts; it
//! must not hold records.

use super::{FieldDef, FieldKind, Key, SubfileSchema, TableInfo, TableSchema};

/// Every table mwsync can track, in a fixed order: the tables with a documented
/// `LastModifiedTime`, keyed by their unique code where they have one (`code`, `taxcode`,
/// `initials`) and by sequence number otherwise.
pub const TABLES: &[TableInfo] = &[
    TableInfo::new("Account", "account", Key::Code("code")),
    TableInfo::new("Name", "name", Key::Code("code")),
    TableInfo::new("Product", "product", Key::Code("code")),
    TableInfo::new("Job", "job", Key::Code("code")),
    TableInfo::new("TaxRate", "taxrate", Key::Code("taxcode")),
    TableInfo::new("Department", "department", Key::Code("code")),
    TableInfo::new("General", "general", Key::Code("code")),
    TableInfo::new("Login", "login", Key::Code("initials")),
    TableInfo::new("Transaction", "transaction", Key::Seq),
    TableInfo::new("Contacts", "contacts", Key::Seq),
    TableInfo::new("Inventory", "inventory", Key::Seq),
    TableInfo::new("Memo", "memo", Key::Seq),
    TableInfo::new("JobSheet", "jobsheet", Key::Seq),
    TableInfo::new("Build", "build", Key::Seq),
    TableInfo::new("Payments", "payments", Key::Seq),
    TableInfo::new("AutoSplit", "autosplit", Key::Seq),
    TableInfo::new("User", "user", Key::Seq),
    TableInfo::new("User2", "user2", Key::Seq),
];

/// The catalogue entry called `name` (exact spelling), at compile time.
const fn info(name: &str) -> &'static TableInfo {
    let mut i = 0;
    while i < TABLES.len() {
        if same(TABLES[i].name.as_bytes(), name.as_bytes()) {
            return &TABLES[i];
        }
        i += 1;
    }
    panic!("a schema names a table missing from the catalogue")
}

/// Byte equality usable in constants.
pub(super) const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn t(name: &'static str, max_len: usize) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Text { max_len },
        system: false,
    }
}
const fn int(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Integer,
        system: false,
    }
}
const fn money(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Decimal { places: 2 },
        system: false,
    }
}
const fn qty(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Decimal { places: 6 },
        system: false,
    }
}
const fn date(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Date,
        system: false,
    }
}
const fn flag(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Boolean,
        system: false,
    }
}
const fn sys(def: FieldDef) -> FieldDef {
    FieldDef {
        system: true,
        ..def
    }
}

const SEQ: FieldDef = sys(int("sequencenumber"));
const LMT: FieldDef = FieldDef {
    name: "lastmodifiedtime",
    kind: FieldKind::DateTime,
    system: true,
};

const ACCOUNT_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("code", 7),
    t("type", 3),
    t("description", 63),
    t("group", 5),
    t("category", 15),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    t("taxcode", 5),
    t("accountantscode", 9),
    int("colour"),
    t("bankaccountnumber", 23),
    t("comments", 255),
    int("flags"),
    sys(t("system", 3)),
];

/// The Account table.
pub static ACCOUNT: TableSchema = TableSchema::new(info("Account"), ACCOUNT_FIELDS, None);

const NAME_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("code", 11),
    t("name", 255),
    t("contact", 25),
    t("position", 29),
    t("salutation", 39),
    t("address1", 59),
    t("address2", 59),
    t("address3", 59),
    t("address4", 59),
    t("postcode", 12),
    t("state", 3),
    t("country", 59),
    t("delivery1", 59),
    t("delivery2", 59),
    t("delivery3", 59),
    t("delivery4", 59),
    t("deliverypostcode", 12),
    t("deliverystate", 3),
    t("deliverycountry", 59),
    t("phone", 19),
    t("fax", 19),
    t("mobile", 19),
    t("email", 80),
    t("weburl", 63),
    t("category1", 15),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    int("customertype"),
    int("suppliertype"),
    int("debtorterms"),
    int("creditorterms"),
    money("creditlimit"),
    qty("discount"),
    t("taxcode", 5),
    t("taxnumber", 19),
    t("bankaccountnumber", 23),
    t("bankaccountname", 59),
    t("bank", 7),
    t("bankbranch", 21),
    t("recaccount", 7),
    t("payaccount", 7),
    t("currency", 3),
    flag("hold"),
    int("colour"),
    t("comment", 1020),
    sys(money("dbalance")),
    sys(money("cbalance")),
];

/// The Name table.
pub static NAME: TableSchema = TableSchema::new(info("Name"), NAME_FIELDS, None);

const PRODUCT_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("code", 31),
    t("description", 255),
    t("type", 1),
    t("category1", 15),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    t("supplier", 11),
    t("suppliercode", 19),
    t("barcode", 19),
    t("sellunit", 5),
    t("buyunit", 5),
    qty("sellprice"),
    qty("buyprice"),
    sys(qty("costprice")),
    qty("conversionfactor"),
    t("salesacct", 13),
    t("stockacct", 13),
    t("cogacct", 13),
    t("selltaxcode", 5),
    t("buytaxcode", 5),
    qty("reorderlevel"),
    qty("weight"),
    flag("inactive"),
    int("colour"),
    t("comment", 1020),
    sys(qty("stockonhand")),
    sys(money("stockvalue")),
];

/// The Product table.
pub static PRODUCT: TableSchema = TableSchema::new(info("Product"), PRODUCT_FIELDS, None);

const JOB_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("code", 9),
    t("description", 255),
    t("client", 11),
    t("contact", 25),
    t("phone", 19),
    t("ordernum", 19),
    t("status", 2),
    t("manager", 3),
    date("startdate"),
    date("enddate"),
    date("targetdate"),
    money("quote"),
    qty("markup"),
    qty("percentcomplete"),
    t("category1", 15),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    int("colour"),
    t("comment", 1020),
    sys(money("billed")),
];

/// The Job table.
pub static JOB: TableSchema = TableSchema::new(info("Job"), JOB_FIELDS, None);

const TRANSACTION_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("ourref", 11),
    date("transdate"),
    sys(date("enterdate")),
    date("duedate"),
    int("period"),
    t("type", 3),
    t("theirref", 21),
    t("namecode", 11),
    t("flag", 5),
    t("description", 1020),
    money("gross"),
    money("taxamount"),
    money("netamount"),
    t("contra", 7),
    t("tofrom", 255),
    sys(t("status", 1)),
    t("salesperson", 5),
    t("currency", 3),
    qty("exchangerate"),
    sys(money("amtpaid")),
    sys(date("datepaid")),
    t("mailingaddress", 255),
    t("deliveryaddress", 255),
    t("prodpricecode", 1),
    int("colour"),
    sys(t("enteredby", 3)),
    sys(t("postedby", 3)),
    sys(FieldDef {
        name: "timeposted",
        kind: FieldKind::DateTime,
        system: true,
    }),
];

const TRANSACTION_DETAIL_FIELDS: &[FieldDef] = &[
    sys(int("detail.sequencenumber")),
    sys(int("detail.parentseq")),
    int("detail.sort"),
    t("detail.account", 13),
    t("detail.dept", 5),
    t("detail.taxcode", 5),
    money("detail.net"),
    money("detail.tax"),
    money("detail.gross"),
    t("detail.description", 1020),
    t("detail.stockcode", 31),
    qty("detail.stockqty"),
    qty("detail.unitprice"),
    qty("detail.costprice"),
    qty("detail.discount"),
    t("detail.saleunit", 5),
    t("detail.jobcode", 9),
    sys(money("detail.debit")),
    sys(money("detail.credit")),
];

/// The Transaction table.
pub static TRANSACTION: TableSchema = TableSchema::new(
    info("Transaction"),
    TRANSACTION_FIELDS,
    Some(SubfileSchema {
        name: "Detail",
        fields: TRANSACTION_DETAIL_FIELDS,
    }),
);

/// The tables the fake serves, in catalogue order.
pub static SERVED: [&TableSchema; 5] = [&ACCOUNT, &NAME, &PRODUCT, &JOB, &TRANSACTION];
