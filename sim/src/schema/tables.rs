//! The simulator's table catalogue and field lists: every table mwsync can track with its
//! record element and natural key, and its fields in server order: the two system stamps,
//! then the fields of the MoneyWorks manual's Appendix A in the manual's (alphabetical) order,
//! lowercase. Types follow the manual's letters: T and A are text of the listed size, D a
//! date, S a date-time, B a flag; N is split into whole numbers (counts, codes, flags,
//! sequence references; colours are `SHORT`), money (2 decimals) and quantities, prices and
//! rates (6 decimals), by what the field holds. It owns these facts; it must not hold records.

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
const fn short(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Short,
        system: false,
    }
}
const fn dt(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::DateTime,
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
    t("accountantscode", 9),
    t("bankaccountnumber", 23),
    t("category", 7),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    t("code", 7),
    short("colour"),
    t("comments", 1020),
    sys(dt("created")),
    t("currency", 3),
    t("description", 39),
    t("ebitda", 1),
    int("flags"),
    t("group", 5),
    date("laststatementimport"),
    t("manualchequenumber", 11),
    t("pandl", 7),
    t("printedchequenumber", 11),
    int("securitylevel"),
    t("system", 2),
    t("taggedtext", 255),
    t("taxcode", 3),
    t("type", 2),
    qty("usernum"),
    t("usertext", 255),
];

/// The Account table.
pub static ACCOUNT: TableSchema = TableSchema::new(info("Account"), ACCOUNT_FIELDS, None);

const NAME_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("abuid", 63),
    t("accountname", 21),
    t("address1", 59),
    t("address2", 59),
    t("address3", 59),
    t("address4", 59),
    t("afterhours", 11),
    t("afterhours2", 11),
    t("bank", 7),
    t("bankaccountnumber", 23),
    t("bankbranch", 21),
    t("category1", 15),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    sys(money("ccurrent")),
    t("code", 11),
    short("colour"),
    t("comment", 1020),
    t("contact", 25),
    t("contact2", 29),
    t("creditcardexpiry", 5),
    t("creditcardname", 19),
    t("creditcardnum", 19),
    money("creditlimit"),
    int("creditorterms"),
    t("currency", 3),
    t("custom1", 255),
    t("custom2", 255),
    t("custom3", 15),
    t("custom4", 15),
    t("custom5", 15),
    t("custom6", 15),
    t("custom7", 15),
    t("custom8", 15),
    int("customertype"),
    qty("custpropmtpaymentdiscount"),
    int("custpromptpaymentterms"),
    sys(money("d30plus")),
    sys(money("d60plus")),
    sys(money("d90plus")),
    sys(date("dateoflastsale")),
    sys(money("dbalance")),
    sys(money("dcurrent")),
    t("ddi", 19),
    t("ddi2", 19),
    int("debtorterms"),
    t("delivery1", 59),
    t("delivery2", 59),
    t("delivery3", 59),
    t("delivery4", 59),
    t("deliverypostcode", 12),
    t("deliverystate", 4),
    qty("discount"),
    t("einvoiceid", 31),
    t("email", 80),
    t("email2", 80),
    t("fax", 19),
    int("flags"),
    flag("hold"),
    int("kind"),
    int("lastpaymentmethod"),
    t("memo", 255),
    t("memo2", 255),
    t("mobile", 14),
    t("mobile2", 13),
    t("name", 255),
    t("payaccount", 7),
    int("paymentmethod"),
    t("phone", 19),
    t("position", 29),
    t("position2", 29),
    t("postcode", 11),
    t("productpricing", 1),
    t("recaccount", 7),
    int("receiptmethod"),
    int("role"),
    int("role2"),
    t("salesperson", 5),
    t("salutation", 39),
    t("salutation2", 39),
    t("splitacct1", 13),
    t("splitacct2", 13),
    qty("splitpercent"),
    t("state", 3),
    int("suppliertype"),
    qty("supppromptpaymentdiscount"),
    int("supplierpromptpaymentterms"),
    t("taggedtext", 255),
    t("taxcode", 5),
    t("taxnumber", 19),
    t("theirref", 15),
    qty("usernum"),
    t("usertext", 255),
    t("weburl", 63),
];

/// The Name table.
pub static NAME: TableSchema = TableSchema::new(info("Name"), NAME_FIELDS, None);

const PRODUCT_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("barcode", 19),
    qty("buyprice"),
    t("buypricecurrency", 3),
    t("buyunit", 5),
    qty("buyweight"),
    t("category1", 15),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    t("code", 31),
    t("cogacct", 13),
    short("colour"),
    t("comment", 1020),
    qty("conversionfactor"),
    sys(qty("costprice")),
    t("custom1", 255),
    t("custom2", 255),
    t("custom3", 15),
    t("custom4", 15),
    t("custom5", 15),
    t("custom6", 15),
    t("custom7", 15),
    t("custom8", 15),
    t("description", 255),
    int("flags"),
    sys(int("hash")),
    int("jobpricingmode"),
    int("leadtimedays"),
    qty("marginwarning"),
    qty("minbuildqty"),
    qty("normalbuildqty"),
    qty("plussage"),
    qty("qtybreak1"),
    qty("qtybreak2"),
    qty("qtybreak3"),
    qty("qtybreak4"),
    qty("qtybrksellpricea1"),
    qty("qtybrksellpricea2"),
    qty("qtybrksellpricea3"),
    qty("qtybrksellpricea4"),
    qty("qtybrksellpriceb1"),
    qty("qtybrksellpriceb2"),
    qty("qtybrksellpriceb3"),
    qty("qtybrksellpriceb4"),
    qty("reorderlevel"),
    t("salesacct", 13),
    qty("selldiscount"),
    int("selldiscountmode"),
    qty("sellprice"),
    qty("sellpriceb"),
    qty("sellpricec"),
    qty("sellpriced"),
    qty("sellpricee"),
    qty("sellpricef"),
    qty("sellweight"),
    t("sellunit", 5),
    t("stockacct", 13),
    sys(qty("stockonhand")),
    sys(qty("stocktakenewqty")),
    sys(qty("stocktakestartqty")),
    sys(money("stockvalue")),
    t("supplier", 11),
    t("supplierscode", 19),
    t("taggedtext", 255),
    t("type", 1),
    flag("usemultipleprices"),
    qty("usernum"),
    t("usertext", 255),
];

/// The Product table.
pub static PRODUCT: TableSchema = TableSchema::new(info("Product"), PRODUCT_FIELDS, None);

const JOB_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    sys(money("billed")),
    t("category1", 15),
    t("category2", 15),
    t("category3", 15),
    t("category4", 15),
    t("client", 11),
    t("code", 9),
    short("colour"),
    t("comment", 1020),
    t("contact", 63),
    t("custom1", 255),
    t("custom2", 255),
    t("custom3", 15),
    t("custom4", 15),
    t("custom5", 15),
    t("custom6", 15),
    t("custom7", 15),
    t("custom8", 15),
    t("description", 255),
    date("enddate"),
    t("manager", 3),
    qty("markup"),
    t("ordernum", 31),
    qty("percentcomplete"),
    t("phone", 19),
    t("project", 9),
    money("quote"),
    date("startdate"),
    t("status", 2),
    t("taggedtext", 255),
    date("targetdate"),
    qty("usernum"),
    t("usertext", 255),
];

/// The Job table.
pub static JOB: TableSchema = TableSchema::new(info("Job"), JOB_FIELDS, None);

const TAXRATE_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    int("combine"),
    qty("combinerate1"),
    qty("combinerate2"),
    date("date"),
    sys(money("gstpaid")),
    sys(money("gstreceived")),
    sys(money("netpaid")),
    sys(money("netreceived")),
    t("paidaccount", 7),
    qty("rate1"),
    qty("rate2"),
    t("recaccount", 7),
    t("taggedtext", 255),
    t("taxcode", 5),
    qty("usernum"),
    t("usertext", 255),
];

/// The TaxRate table: the rate of each tax code, changing from `rate1` to `rate2` on `date`.
pub static TAXRATE: TableSchema = TableSchema::new(info("TaxRate"), TAXRATE_FIELDS, None);

const DEPARTMENT_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("classification", 5),
    t("code", 5),
    t("custom1", 15),
    t("custom2", 9),
    t("description", 35),
    t("taggedtext", 255),
    qty("usernum"),
    t("usertext", 255),
];

/// The Department table.
pub static DEPARTMENT: TableSchema = TableSchema::new(info("Department"), DEPARTMENT_FIELDS, None);

const GENERAL_FIELDS: &[FieldDef] = &[SEQ, LMT, t("code", 5), t("description", 25)];

/// The General table: account categories (`C…`), department classifications (`D…`) and
/// groups (`S…`), told apart by the first letter of the code.
pub static GENERAL: TableSchema = TableSchema::new(info("General"), GENERAL_FIELDS, None);

const LOGIN_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("category", 31),
    t("email", 63),
    int("flags"),
    t("initials", 3),
    t("name", 31),
    t("password", 33),
    t("privileges", 65),
    t("role", 3),
    int("securitylevel"),
    t("taggedtext", 255),
    qty("usernum"),
    t("usertext", 255),
];

/// The Login table: one record per MoneyWorks user, keyed by initials.
pub static LOGIN: TableSchema = TableSchema::new(info("Login"), LOGIN_FIELDS, None);

const TRANSACTION_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    sys(int("aging")),
    sys(money("amtpaid")),
    sys(money("amtwrittenoff")),
    t("analysis", 9),
    sys(t("approvedby1", 3)),
    sys(t("approvedby2", 3)),
    sys(int("bankjnseq")),
    short("colour"),
    t("contra", 7),
    sys(date("datepaid")),
    t("deliveryaddress", 255),
    t("description", 1000),
    date("duedate"),
    int("emailed"),
    sys(date("enterdate")),
    sys(t("enteredby", 3)),
    qty("exchangerate"),
    t("flag", 5),
    int("flags"),
    money("freightamount"),
    t("freightcode", 15),
    t("freightdetails", 255),
    money("gross"),
    flag("hold"),
    t("mailingaddress", 255),
    t("namecode", 11),
    money("orderdeposit"),
    money("ordershipped"),
    money("ordertotal"),
    int("originatingorderseq"),
    t("ourref", 11),
    money("payamount"),
    int("paymentmethod"),
    int("period"),
    sys(t("postedby", 3)),
    int("printed"),
    t("prodpricecode", 1),
    money("promptpaymentamt"),
    date("promptpaymentdate"),
    flag("recurring"),
    t("salesperson", 5),
    int("securitylevel"),
    t("specialaccount", 23),
    t("specialbank", 7),
    t("specialbranch", 21),
    sys(t("status", 1)),
    t("taggedtext", 255),
    money("taxamount"),
    sys(int("taxcycle")),
    t("theirref", 21),
    sys(dt("timeposted")),
    t("tofrom", 200),
    date("transdate"),
    int("transferred"),
    t("type", 3),
    t("user1", 255),
    t("user2", 255),
    t("user3", 255),
    t("user4", 15),
    t("user5", 15),
    t("user6", 15),
    t("user7", 15),
    t("user8", 15),
    qty("usernum"),
    t("usertext", 255),
];

/// Detail lines: their own sequence number first (a simulator choice), then the manual's
/// fields. `detail.net` is not in the manual's list but in every real export and in
/// `detail.basecurrencynet`'s description, so the simulator has it.
const TRANSACTION_DETAIL_FIELDS: &[FieldDef] = &[
    sys(int("detail.sequencenumber")),
    t("detail.account", 14),
    qty("detail.backorderqty"),
    money("detail.basecurrencynet"),
    qty("detail.costprice"),
    sys(money("detail.credit")),
    date("detail.date"),
    t("detail.custom1", 31),
    t("detail.custom2", 31),
    sys(money("detail.debit")),
    t("detail.dept", 5),
    t("detail.description", 1020),
    qty("detail.discount"),
    money("detail.expensedtax"),
    int("detail.flags"),
    money("detail.gross"),
    t("detail.jobcode", 9),
    int("detail.moreflags"),
    money("detail.net"),
    qty("detail.noninvrcvdnotinvoicedqty"),
    qty("detail.orderqty"),
    flag("detail.orderstatus"),
    qty("detail.originalunitcost"),
    sys(int("detail.parentseq")),
    int("detail.period"),
    qty("detail.postedqty"),
    t("detail.saleunit", 5),
    int("detail.securitylevel"),
    t("detail.serialnumber", 31),
    int("detail.statement"),
    t("detail.stockcode", 31),
    t("detail.stocklocation", 15),
    qty("detail.stockqty"),
    int("detail.sort"),
    t("detail.taggedtext", 255),
    money("detail.tax"),
    t("detail.taxcode", 5),
    sys(t("detail.transactiontype", 3)),
    qty("detail.unitprice"),
    qty("detail.usernum"),
    t("detail.usertext", 255),
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

const CONTACTS_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("afterhours", 19),
    t("contact", 39),
    t("ddi", 19),
    t("email", 63),
    t("memo", 255),
    t("mobile", 19),
    int("order"),
    int("parentseq"),
    t("position", 39),
    int("role"),
    t("salutation", 39),
    t("taggedtext", 255),
    qty("usernum"),
    t("usertext", 255),
];

/// The Contacts table: contact people of a Name (`parentseq`), in `order`.
pub static CONTACTS: TableSchema = TableSchema::new(info("Contacts"), CONTACTS_FIELDS, None);

const INVENTORY_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    date("expiry"),
    t("identifier", 31),
    t("location", 15),
    int("productseq"),
    qty("qty"),
    sys(qty("stocktakenewqty")),
    sys(qty("stocktakestartqty")),
];

/// The Inventory table: stock on hand of a Product (`productseq`) per location and batch.
pub static INVENTORY: TableSchema = TableSchema::new(info("Inventory"), INVENTORY_FIELDS, None);

const MEMO_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    date("date"),
    int("nameseq"),
    date("recalldate"),
    t("text", 255),
];

/// The Memo table: dated notes on a Name (`nameseq`). The manual writes its fields
/// `Memo.NameSeq`; the prefix is the table's own name, which expressions may give or leave
/// out.
pub static MEMO: TableSchema = TableSchema::new(info("Memo"), MEMO_FIELDS, None);

const JOBSHEET_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("account", 7),
    t("activitycode", 9),
    t("analysis", 9),
    int("batch"),
    short("colour"),
    t("comments", 255),
    t("costcentre", 5),
    qty("costprice"),
    date("date"),
    date("dateentered"),
    int("desttransseq"),
    t("enteredby", 3),
    int("flags"),
    t("job", 9),
    t("memo", 255),
    int("period"),
    qty("qty"),
    t("resource", 19),
    qty("sellprice"),
    t("serialnumber", 31),
    int("sourcetransseq"),
    t("status", 2),
    t("stocklocation", 15),
    t("taggedtext", 255),
    sys(dt("timeprocessed")),
    t("type", 2),
    t("units", 3),
    qty("usernum"),
    t("usertext", 255),
];

/// The JobSheet table: time and materials used on a Job.
pub static JOBSHEET: TableSchema = TableSchema::new(info("JobSheet"), JOBSHEET_FIELDS, None);

const BUILD_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("memo", 255),
    t("partcode", 19),
    int("productseq"),
    qty("qty"),
];

/// The Build table: the components of a Product's recipe (`productseq`).
pub static BUILD: TableSchema = TableSchema::new(info("Build"), BUILD_FIELDS, None);

const PAYMENTS_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    money("amount"),
    int("cashtrans"),
    date("date"),
    int("gstcycle"),
    int("invoiceid"),
];

/// The Payments table: which receipt or payment (`cashtrans`) paid how much of which invoice
/// (`invoiceid`).
pub static PAYMENTS: TableSchema = TableSchema::new(info("Payments"), PAYMENTS_FIELDS, None);

const AUTOSPLIT_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    t("matchfunction", 255),
    t("matchname", 11),
    int("priority"),
    t("splitacct1", 13),
    t("splitacct2", 13),
    t("splitacct3", 13),
    t("splitacct4", 13),
    qty("splitamount1"),
    qty("splitamount2"),
    qty("splitamount3"),
    int("splitmode"),
];

/// The AutoSplit table (the manual's allocation file): bank-statement allocation rules.
pub static AUTOSPLIT: TableSchema = TableSchema::new(info("AutoSplit"), AUTOSPLIT_FIELDS, None);

const USER_FIELDS: &[FieldDef] = &[SEQ, LMT, t("data", 245), t("key", 9)];

/// The User table: scripts' persistent key and data pairs.
pub static USER: TableSchema = TableSchema::new(info("User"), USER_FIELDS, None);

const USER2_FIELDS: &[FieldDef] = &[
    SEQ,
    LMT,
    date("date1"),
    date("date2"),
    date("date3"),
    date("date4"),
    int("devkey"),
    qty("float1"),
    qty("float2"),
    qty("float3"),
    qty("float4"),
    int("int1"),
    int("int2"),
    int("int3"),
    int("int4"),
    t("key", 28),
    t("taggedtext", 255),
    t("text", 1020),
    t("text1", 255),
    t("text2", 255),
    t("text3", 255),
    t("text4", 255),
];

/// The User2 table: scripts' persistent records under a developer key.
pub static USER2: TableSchema = TableSchema::new(info("User2"), USER2_FIELDS, None);

/// The tables the fake serves, in catalogue order: all of them.
pub static SERVED: [&TableSchema; 18] = [
    &ACCOUNT,
    &NAME,
    &PRODUCT,
    &JOB,
    &TAXRATE,
    &DEPARTMENT,
    &GENERAL,
    &LOGIN,
    &TRANSACTION,
    &CONTACTS,
    &INVENTORY,
    &MEMO,
    &JOBSHEET,
    &BUILD,
    &PAYMENTS,
    &AUTOSPLIT,
    &USER,
    &USER2,
];
