//! Tests of the expression language: syntax, coercions, functions, templates and errors.

use super::parser::{MAX_DEPTH, MAX_NESTING};
use super::*;

/// A record as a list of typed fields, with a table name and a fixed clock.
struct TestEnv {
    fields: Vec<(&'static str, Val)>,
    table: Option<&'static str>,
    now: DateTime,
}

impl Scope for TestEnv {
    fn slot(&self, name: &str) -> Option<Slot> {
        let index = self.fields.iter().position(|(n, _)| *n == name)?;
        Some(Slot {
            index,
            datetime: name == "lastmodifiedtime" || name == "timeposted",
        })
    }
    fn table(&self) -> Option<&str> {
        self.table
    }
}

impl Env for TestEnv {
    fn value(&self, index: usize) -> Val {
        self.fields[index].1.clone()
    }
    fn now(&self) -> DateTime {
        self.now
    }
}

fn t(s: &str) -> DateTime {
    DateTime::parse(s).expect("test time is valid")
}

fn text(s: &str) -> Val {
    Val::Text(s.to_string())
}

fn record() -> TestEnv {
    TestEnv {
        fields: vec![
            ("sequencenumber", Val::Num(12.0)),
            ("lastmodifiedtime", Val::DateTime(t("20240101120000"))),
            ("timeposted", Val::DateTime(t("20231231235959"))),
            ("transdate", Val::DateTime(t("20240101000000"))),
            ("code", text("Acme-01")),
            ("type", text("DII")),
            ("email", text("ann@example.com")),
            ("gross", Val::Num(1009.12)),
            ("name", text("Émile Zola")),
            ("detail.account", text("4000-")),
        ],
        table: Some("transaction"),
        now: t("20240315093007"),
    }
}

fn no_record() -> TestEnv {
    TestEnv {
        fields: Vec::new(),
        table: None,
        now: t("20240315093007"),
    }
}

fn eval_on(env: &TestEnv, src: &str) -> Val {
    parse(src, env)
        .unwrap_or_else(|e| panic!("{src} should parse: {e}"))
        .eval(env)
        .unwrap_or_else(|e| panic!("{src} should evaluate: {e}"))
}

fn shown(src: &str) -> String {
    display(&eval_on(&record(), src))
}

fn holds(src: &str) -> bool {
    parse(src, &record())
        .unwrap_or_else(|e| panic!("{src} should parse: {e}"))
        .matches(&record())
        .unwrap_or_else(|e| panic!("{src} should evaluate: {e}"))
}

fn parse_err(src: &str) -> SearchError {
    match parse(src, &record()) {
        Ok(_) => panic!("{src} should not parse"),
        Err(e) => e,
    }
}

fn eval_err(src: &str) -> SearchError {
    let expr = parse(src, &record()).unwrap_or_else(|e| panic!("{src} should parse: {e}"));
    match expr.eval(&record()) {
        Ok(v) => panic!("{src} should fail, gave {v:?}"),
        Err(e) => e,
    }
}

/// `*` and `/` bind tighter than `+` and `-`, which group left to right.
#[test]
fn arithmetic_precedence() {
    assert_eq!(shown("1 + 2 * 3"), "7");
    assert_eq!(shown("(1 + 2) * 3"), "9");
    assert_eq!(shown("10 - 4 - 3"), "3");
    assert_eq!(shown("12 / 3 / 2"), "2");
    assert_eq!(shown("-2 * 3 + 1"), "-5");
    assert_eq!(shown("2 - -3"), "5");
}

/// `not` binds tighter than `=`, as in the MoneyWorks manual.
#[test]
fn not_binds_tighter_than_comparison() {
    assert!(!holds("not 2 = 1"));
    assert!(holds("not (2 = 1)"));
    assert!(holds("!0"));
}

/// `and` binds tighter than `or`; both short-circuit; `&&`, `||` and `!` are aliases.
#[test]
fn logical_operators() {
    assert!(holds("1 = 1 or 1 = 2 and 1 = 2"));
    assert!(!holds("(1 = 1 or 1 = 2) and 1 = 2"));
    assert!(holds("1 = 1 && 2 = 2"));
    assert!(holds("1 = 2 || 2 = 2"));
    assert!(holds("1 = 1 & !(1 = 2) | 0"));
    assert!(
        !holds("0 and nosuchfield = 1"),
        "and must not evaluate its right side"
    );
    assert!(
        holds("1 or nosuchfield = 1"),
        "or must not evaluate its right side"
    );
    assert!(holds("sequencenumber > 5 AnD code = `acme@` Or 0"));
}

/// Comparisons give booleans, which behave as 1 and 0 in arithmetic and display.
#[test]
fn comparisons_are_numbers() {
    assert_eq!(shown("(1 < 2) + (2 < 1) + (3 >= 3)"), "2");
    assert_eq!(shown("1 <= 1"), "1");
    assert_eq!(shown("1 <> 1"), "0");
    assert_eq!(shown("1 != 2"), "1");
    assert!(holds("gross > 1000"));
    assert!(holds("sequencenumber"), "a non-zero number is true");
    assert!(!holds("sequencenumber - 12"), "zero is false");
}

/// Both quote styles give text, with the escapes `\" \` \t \n \r \\`.
#[test]
fn string_constants_and_escapes() {
    assert_eq!(eval_on(&record(), r#""a\"b""#), text("a\"b"));
    assert_eq!(eval_on(&record(), r#"`say "hi"`"#), text("say \"hi\""));
    assert_eq!(eval_on(&record(), r"`x\`y`"), text("x`y"));
    assert_eq!(
        eval_on(&record(), r#""1\t2\n3\r4\\5""#),
        text("1\t2\n3\r4\\5")
    );
    assert!(holds(r#"`ACME-01` = "acme-01""#));
    assert_eq!(eval_on(&record(), r#""""#), text(""));
}

/// Hexadecimal constants are numbers.
#[test]
fn hex_constants() {
    assert_eq!(eval_on(&record(), "#FF"), Val::Num(255.0));
    assert_eq!(eval_on(&record(), "#ff + 1"), Val::Num(256.0));
}

/// `@` in the right-hand text of `=`/`<>` matches any run of characters; `==` is exact.
#[test]
fn wildcards() {
    assert!(holds("type = `DI@`"));
    assert!(holds("type = `di@`"));
    assert!(holds("type = `@I`"));
    assert!(holds("type = `D@I@`"));
    assert!(holds("type = `@`"));
    assert!(!holds("type = `CI@`"));
    assert!(!holds("type = `DI`"));
    assert!(holds("type <> `CI@`"));
    assert!(holds("code = `@-0@`"));
    assert!(holds("email = `ann@`"));
    assert!(
        !holds("email == `ann@`"),
        "== must not treat @ as a wildcard"
    );
    assert!(holds("email == `ANN@EXAMPLE.COM`"));
    assert!(
        !holds("`DI@` = type"),
        "only the right-hand side is a pattern"
    );
}

/// Field names, functions, keywords and text comparisons ignore case.
#[test]
fn case_insensitivity() {
    assert!(holds("SEQUENCENUMBER = 12 and SequenceNumber = 12"));
    assert_eq!(shown("LEFT(Code, 4)"), "Acme");
    assert_eq!(shown("upper(code)"), "ACME-01");
    assert!(holds(r#""apple" < "Banana""#));
    assert!(holds(r#""ÉMILE ZOLA" = name"#));
    assert!(holds("code = `ACME-01` AND NOT 0"));
}

/// Mixed comparisons follow the manual: text wins, so numbers compare as text.
#[test]
fn mixed_type_comparisons_promote_to_text() {
    assert!(holds("sequencenumber = `12`"));
    assert!(holds(r#"7 < "five""#), "the manual's example");
    assert!(
        holds(r#"sequencenumber < "5""#),
        "\"12\" sorts before \"5\" as text"
    );
    assert_eq!(shown(r#"5 + "6""#), "56");
    assert_eq!(shown(r#""Me" * 3"#), "MeMeMe");
    assert_eq!(shown(r#""n=" + (1 = 1)"#), "n=1");
}

/// A `table.field` prefix naming the current table is accepted; another table's is refused.
#[test]
fn table_prefixes() {
    assert!(holds("Transaction.SequenceNumber = 12"));
    assert!(
        holds("detail.account = `4000-`"),
        "a dotted field name is a field"
    );
    let e = eval_err("name.code = `X`");
    assert!(e.message.contains("relational"), "{e}");
    assert!(e.message.contains("name.code"), "{e}");
    let anywhere = TestEnv {
        table: None,
        ..record()
    };
    assert_eq!(eval_on(&anywhere, "whatever.code"), text("Acme-01"));
}

/// A name that is no field is an error naming it, at its position.
#[test]
fn unknown_field_is_named() {
    let e = eval_err("code = `x` or NoSuchField > 1");
    assert_eq!(e.message, "unknown field `NoSuchField`");
    assert_eq!(e.position, 14);
    let e = parse("code", &no_record())
        .expect("parses")
        .eval(&no_record())
        .expect_err("no record at document level");
    assert_eq!(e.message, "unknown field `code`");
}

/// TextToDate and DateToText convert both ways in every supported format.
#[test]
fn text_to_date_round_trips() {
    for stamp in ["20240229235959", "19991231000000", "20240101120000"] {
        let src = format!(
            "DateToText(TextToDate(\"{stamp}\", DateFormYYYYMMDDHHMMSS), DateFormYYYYMMDDHHMMSS)"
        );
        assert_eq!(shown(&src), stamp);
    }
    assert_eq!(
        eval_on(&record(), "TextToDate(`20240101`, DateFormYYYYMMDDHHMMSS)"),
        Val::DateTime(t("20240101000000"))
    );
    assert_eq!(
        eval_on(&record(), "TextToDate(`20240101123456`)"),
        Val::DateTime(t("20240101123456"))
    );
    assert_eq!(shown("DateToText(lastmodifiedtime, -7)"), "20240101120000");
    assert_eq!(
        shown("DateToText(lastmodifiedtime, DateFormYYYYMMDD)"),
        "20240101"
    );
    assert_eq!(
        shown("DateToText(lastmodifiedtime, DateFormISO)"),
        "2024-01-01"
    );
    assert_eq!(
        shown("DateToText(lastmodifiedtime, DateFormDateTimeBigEndian)"),
        "2024-01-01 12:00:00"
    );
    assert_eq!(
        shown("DateToText(TextToDate(`2024-02-29`, DateFormISO), DateFormYYYYMMDD)"),
        "20240229"
    );
    assert_eq!(
        shown("TextToDate(`2024-02-29 23:59:58`, DateFormDateTimeBigEndian)"),
        "20240229235958"
    );
    assert_eq!(
        shown(r#"DateToText(lastmodifiedtime, "%Y-%m-%dT%H:%M:%S %y%%")"#),
        "2024-01-01T12:00:00 24%"
    );
    assert_eq!(shown("'20240301'"), "20240301000000");
}

/// Date-times order by time across a year boundary, also against 8- and 14-digit text.
#[test]
fn datetime_ordering_across_boundaries() {
    let mark = "TextToDate(\"20240101000000\", DateFormYYYYMMDDHHMMSS)";
    assert!(holds(&format!("timeposted < {mark}")));
    assert!(!holds(&format!("timeposted >= {mark}")));
    assert!(holds(&format!("timeposted >= {mark} - 1/86400")));
    assert!(holds(&format!("lastmodifiedtime >= {mark}")));
    assert!(holds("lastmodifiedtime > `20240101115959`"));
    assert!(!holds("lastmodifiedtime > `20240101120000`"));
    assert!(holds("lastmodifiedtime >= `20240101`"));
    assert!(holds("timeposted < '20240101'"));
    assert!(holds("lastmodifiedtime > timeposted"));
    assert!(holds("lastmodifiedtime > ``"), "a blank date is earliest");
    assert_eq!(shown("TextToDate(`20240228`) + 1"), "20240229000000");
    assert_eq!(shown("TextToDate(`20240301`) - 1"), "20240229000000");
    assert_eq!(shown("lastmodifiedtime - timeposted"), "0.5000115741");
}

/// `=` and its relatives on a date-time field are refused, as MoneyWorks does.
#[test]
fn equality_on_datetime_field_refused() {
    for src in [
        "LastModifiedTime = TextToDate(\"20240101120000\", DateFormYYYYMMDDHHMMSS)",
        "`20240101120000` == lastmodifiedtime",
        "transaction.timeposted <> '20240101'",
        "lastmodifiedtime != 0",
    ] {
        let e = eval_err(src);
        assert!(e.message.contains("cannot be compared with"), "{src}: {e}");
    }
    let e = eval_err("LastModifiedTime = `x`");
    assert!(e.message.starts_with("LastModifiedTime cannot"), "{e}");
    assert_eq!(e.position, 0);
    assert!(
        holds("transdate = '20240101'"),
        "a date field may be compared with ="
    );
    assert!(holds("DateToText(lastmodifiedtime, -7) = `20240101120000`"));
}

/// `evaluate` replies: arithmetic prints without trailing zeros, the clock as 14 digits.
#[test]
fn evaluate_formatting() {
    let env = no_record();
    let show = |src: &str| display(&eval_on(&env, src));
    assert_eq!(show("1+1"), "2");
    assert_eq!(show("2*3.5"), "7");
    assert_eq!(show("15/2"), "7.5");
    assert_eq!(show("0.1 + 0.2"), "0.3");
    assert_eq!(show("1/3"), "0.3333333333");
    assert_eq!(show("-0.5 * 0"), "0");
    assert_eq!(show("100000 * 100000"), "10000000000");
    assert_eq!(
        show("DateToText(Time(), DateFormYYYYMMDDHHMMSS)"),
        "20240315093007"
    );
    assert_eq!(show("Time()"), "20240315093007");
    assert_eq!(show("Today()"), "20240315");
    assert_eq!(show("1 = 1"), "1");
    assert_eq!(show("`a` + `b`"), "ab");
}

/// Text functions count characters, not bytes, and clamp out-of-range counts.
#[test]
fn text_functions() {
    assert_eq!(shown("Left(name, 2)"), "Ém");
    assert_eq!(shown("Right(name, 4)"), "Zola");
    assert_eq!(shown("Right(code, 99)"), "Acme-01");
    assert_eq!(shown("Left(code, -1)"), "");
    assert_eq!(shown("Mid(code, 2, 3)"), "cme");
    assert_eq!(shown("Mid(code, 0, 2)"), "Ac");
    assert_eq!(shown("Lower(code)"), "acme-01");
    assert_eq!(shown("Len(name)"), "10");
    assert_eq!(shown("Trim(`  x  `)"), "x");
    assert_eq!(shown("TextToNum(` 6 `) + 5"), "11");
    assert_eq!(shown("Left(sequencenumber, 1)"), "1");
    assert!(holds("left(code, 1) = `A`"));
}

/// `sort_cmp` orders numbers, then text ignoring case, then date-times.
#[test]
fn sort_order() {
    let mut vals = vec![
        Val::DateTime(t("20240101000000")),
        text("beta"),
        Val::Num(10.0),
        text("Alpha"),
        Val::DateTime(t("20231231235959")),
        Val::Bool(true),
        text("alpha"),
        Val::Num(-1.5),
    ];
    vals.sort_by(sort_cmp);
    assert_eq!(
        vals,
        vec![
            Val::Num(-1.5),
            Val::Bool(true),
            Val::Num(10.0),
            text("Alpha"),
            text("alpha"),
            text("beta"),
            Val::DateTime(t("20231231235959")),
            Val::DateTime(t("20240101000000")),
        ]
    );
}

/// Templates evaluate `[expr]` parts and decode `\t \r \n \xHH \\`.
#[test]
fn template_rendering() {
    let tpl = parse_template(r"[sequencenumber]\t[lastmodifiedtime]\n", &record()).expect("parses");
    assert_eq!(
        tpl.render(&record()).expect("renders"),
        "12\t20240101120000\n"
    );
    let tpl = parse_template(r"\x41\x7e\\ [code + `]`]]\r", &record()).expect("parses");
    assert_eq!(tpl.render(&record()).expect("renders"), "A~\\ Acme-01]]\r");
    let tpl = parse_template("plain é text", &record()).expect("parses");
    assert_eq!(tpl.render(&record()).expect("renders"), "plain é text");
    assert_eq!(
        parse_template("", &record())
            .expect("parses")
            .render(&record())
            .expect("renders"),
        ""
    );
}

/// Template errors: unclosed `[`, unknown metacharacters, bad `\x`, and expression errors
/// reported at their position in the whole format.
#[test]
fn template_errors() {
    let e = parse_template("[code]\t[sequencenumber", &record()).expect_err("unclosed");
    assert_eq!(e.position, 7);
    assert!(e.message.contains("no matching `]`"), "{e}");
    let e = parse_template(r"a\qb", &record()).expect_err("unknown metacharacter");
    assert_eq!(e.position, 1);
    assert!(e.message.contains(r"\q"), "{e}");
    assert!(parse_template(r"\x4", &record()).is_err());
    assert!(parse_template(r"\xZZ", &record()).is_err());
    assert!(parse_template("x\\", &record()).is_err());
    let e = parse_template("ab[1 +]", &record()).expect_err("bad expression");
    assert_eq!(e.position, 6);
    assert_eq!(e.source_text, "ab[1 +]");
    assert!(
        parse_template("[]", &record()).is_err(),
        "an empty expression is an error"
    );
    let e = parse_template("[nosuch]", &record())
        .expect("parses")
        .render(&record())
        .expect_err("unknown field");
    assert_eq!(e.position, 1);
}

/// Unterminated text, date and quoted constants are reported where they start.
#[test]
fn unterminated_constants() {
    let e = parse_err(r#"code = "abc"#);
    assert_eq!(e.position, 7);
    assert!(e.message.contains("unterminated"), "{e}");
    let e = parse_err("code = `abc\\`");
    assert_eq!(e.position, 7);
    let e = parse_err("transdate > '2024");
    assert_eq!(e.position, 12);
    assert!(e.message.contains("unterminated date"), "{e}");
}

/// Locale-dependent date constants are refused with a pointer to TextToDate.
#[test]
fn locale_date_constants_refused() {
    for src in ["'1/1/2014'", "'20241301'", "''", "'2024010112'"] {
        let e = parse_err(src);
        assert!(e.message.contains("TextToDate"), "{src}: {e}");
        assert_eq!(e.position, 0);
    }
}

/// Unknown functions are refused by name.
#[test]
fn unknown_function_refused() {
    let e = parse_err("code = `x` and TimeStamp(TSZ_UTC, TSF_ISO8601) > 0");
    assert_eq!(
        e.message,
        "function `TimeStamp` is not supported by the simulator"
    );
    assert_eq!(e.position, 15);
}

/// Unbalanced parentheses name the unmatched one.
#[test]
fn unbalanced_parentheses() {
    let e = parse_err("(1 + (2 * 3)");
    assert_eq!(e.position, 12);
    assert!(e.message.contains("to close the `(` at position 0"), "{e}");
    let e = parse_err("1 + 2)");
    assert_eq!(e.position, 5);
    assert!(e.message.contains("after the end"), "{e}");
    let e = parse_err("Left(code, 1");
    assert!(e.message.contains("`,` or `)`"), "{e}");
    assert!(parse_err("()").message.contains("expected a value"));
}

/// Anything after a complete expression is refused.
#[test]
fn trailing_garbage() {
    let e = parse_err("sequencenumber > 5 code");
    assert_eq!(e.position, 19);
    assert_eq!(
        e.message,
        "unexpected `code` after the end of the expression"
    );
    assert!(parse_err("1 2").message.contains("`2`"));
    let e = parse_err("code = $x");
    assert_eq!(e.message, "unexpected character `$`");
    assert_eq!(e.position, 7);
}

/// Empty or truncated expressions are refused.
#[test]
fn missing_operands() {
    assert!(parse_err("").message.contains("the end of the expression"));
    assert!(parse_err("   ").message.contains("expected a value"));
    let e = parse_err("1 +");
    assert_eq!(e.position, 3);
    assert!(parse_err("and 1").message.contains("`and`"));
}

/// Wrong argument counts and types name the function and the argument.
#[test]
fn wrong_arguments() {
    let e = parse_err("Left(`abc`)");
    assert_eq!(e.message, "`Left` takes 2 arguments, got 1");
    let e = parse_err("Time(1)");
    assert_eq!(e.message, "`Time` takes 0 arguments, got 1");
    let e = parse_err("TextToDate()");
    assert_eq!(e.message, "`TextToDate` takes 1 to 2 arguments, got 0");
    let e = eval_err("Left(code, code)");
    assert_eq!(e.position, 11);
    assert!(
        e.message.contains("argument 2 of `Left` must be a number"),
        "{e}"
    );
    assert!(
        eval_err("DateToText(sequencenumber, -7)")
            .message
            .contains("needs a date")
    );
    assert!(
        eval_err("DateToText(lastmodifiedtime)")
            .message
            .contains("locale")
    );
    assert!(
        eval_err("DateToText(lastmodifiedtime, 3)")
            .message
            .contains("not supported")
    );
    assert!(
        eval_err("DateToText(lastmodifiedtime, `%Q`)")
            .message
            .contains("%Q")
    );
    assert!(eval_err("TextToNum(code)").message.contains("not a number"));
}

/// Bad constant sub-expressions fail at parse time, since they are folded.
#[test]
fn constant_errors_fail_the_parse() {
    let e = parse_err("lastmodifiedtime >= TextToDate(`2024-01-01`, DateFormYYYYMMDDHHMMSS)");
    assert_eq!(e.position, 20);
    assert!(e.message.contains("TextToDate"), "{e}");
    assert!(parse_err("TextToDate(`1/1/24`)").message.contains("locale"));
    assert!(
        parse_err("TextToDate(`20240230`, -8)")
            .message
            .contains("not a valid date")
    );
    assert!(parse_err("1 / 0").message.contains("division by zero"));
    assert!(parse_err("`x` * 99999999").message.contains("exceed"));
}

/// Type errors in operators describe both operands.
#[test]
fn operator_type_errors() {
    assert!(
        eval_err("code - 1")
            .message
            .contains("cannot combine the text `Acme-01`")
    );
    assert!(eval_err("-code").message.contains("cannot negate"));
    assert!(
        eval_err("code and 1")
            .message
            .contains("`and` needs conditions")
    );
    assert!(eval_err("not code").message.contains("`not` needs"));
    assert!(
        eval_err("lastmodifiedtime > 5")
            .message
            .contains("cannot compare")
    );
    assert!(
        eval_err("lastmodifiedtime > `yesterday`")
            .message
            .contains("YYYYMMDD")
    );
    assert!(
        eval_err("lastmodifiedtime + timeposted")
            .message
            .contains("cannot combine")
    );
    let e = parse("code", &record())
        .expect("parses")
        .matches(&record())
        .expect_err("text");
    assert!(e.message.contains("must be a condition"), "{e}");
}

/// Malformed tokens and names: bare `#`, unknown escapes, unsupported DateForm constants.
#[test]
fn malformed_tokens() {
    assert!(parse_err("#").message.contains("hexadecimal"));
    assert!(
        parse_err("#FFFFFFFFFFFFFFFFF")
            .message
            .contains("too large")
    );
    let e = parse_err(r#""a\qb""#);
    assert_eq!(e.position, 2);
    assert!(e.message.contains(r"\q"), "{e}");
    let e = parse_err("DateToText(Time(), DateFormShort)");
    assert!(e.message.contains("DateFormShort"), "{e}");
    assert!(
        parse_err("code. = 1")
            .message
            .contains("not a valid field name")
    );
}

/// Pathological nesting is refused instead of exhausting the stack.
#[test]
fn deep_nesting_refused() {
    let src = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse_err(&src).message.contains("nested too deeply"));
    let src = format!("code{}", " + code".repeat(5000));
    assert!(parse_err(&src).message.contains("nested too deeply"));
    let src = format!("{}1", "-".repeat(5000));
    assert!(parse_err(&src).message.contains("nested too deeply"));
    let levels = MAX_NESTING as usize / 2 - 1;
    let fine = format!("{}1{}", "(-".repeat(levels), ")".repeat(levels));
    assert_eq!(shown(&fine), if levels % 2 == 1 { "-1" } else { "1" });
    let long = format!(
        "sequencenumber{}",
        " + sequencenumber".repeat(MAX_DEPTH as usize - 2)
    );
    assert_eq!(shown(&long), (12 * (MAX_DEPTH - 1)).to_string());
}

/// The error text carries the position and the whole source.
#[test]
fn error_display() {
    let e = parse_err("1 +");
    assert_eq!(
        e.to_string(),
        format!("{} at position 3 in `1 +`", e.message)
    );
    assert_eq!(e.class(), ErrorClass::Invalid);
}
