//! Ledger exports read back for real: the XLSX with calamine and its raw sheet XML, the CSV
//! with the `csv` crate, as an office clerk's Excel would see them.

use std::io::Read;
use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook};
use chrono::{NaiveDate, NaiveDateTime};
use gridlink_sync_server::ledger::{
    Cell, Column, Kind, Label, Lang, Ledger, LedgerError, MAX_XLSX_ROWS, PROGRESS_EVERY, Row, write_csv, write_xlsx,
};

const VISITS: Ledger = Ledger::new(
    Label::new("走访台账", "Visit ledger"),
    Label::new("走访", "Visits"),
    &[
        Column::new("住户地址", "Address", Kind::Text),
        Column::new("户主", "Head of household", Kind::Text),
        Column::new("走访人", "Visitor", Kind::Text),
        Column::new("走访时间", "Visit time", Kind::DateTime),
        Column::new("见到本人", "Met in person", Kind::YesNo),
        Column::new("备注", "Notes", Kind::Text),
        Column::new("回访日期", "Follow-up", Kind::Date),
    ],
);

const SUMMARY: Ledger = Ledger::new(
    Label::new("网格月度汇总", "Monthly summary per grid"),
    Label::new("汇总", "Summary"),
    &[
        Column::new("网格", "Grid", Kind::Text).width(20),
        Column::new("户数", "Households", Kind::Integer),
        Column::new("覆盖率", "Coverage", Kind::Percent),
        Column::new("满意度", "Satisfaction", Kind::Decimal),
    ],
);

/// 2026-11-28 09:30 in Shanghai is 01:30 UTC.
const NOV_28_0930: i64 = 1_795_829_400_000;
/// 2026-11-27 17:30 UTC is already 01:30 on the 28th in Shanghai.
const NOV_27_1730_UTC: i64 = 1_795_800_600_000;

const NOTE_WITH_PUNCTUATION: &str = "血压正常,已提醒按时服药；老人说\"下周再来\"";
const NOTE_MULTILINE: &str = "门口堆放杂物\n已联系物业清理";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(h, min, 0).unwrap()
}

fn visit_rows() -> Vec<Row> {
    vec![
        vec![
            Cell::text("凤凰街道滨湖社区7栋2单元302"),
            Cell::text("张桂兰"),
            Cell::text("李建国"),
            Cell::DateTime(NOV_28_0930),
            Cell::YesNo(true),
            Cell::text(NOTE_WITH_PUNCTUATION),
            Cell::Date(date(2026, 12, 5)),
        ],
        vec![
            Cell::text("凤凰街道滨湖社区7栋1单元101"),
            // A name someone typed to attack whoever opens the export.
            Cell::text("=HYPERLINK(\"http://evil.example\",\"点此\")"),
            Cell::text("王秀英"),
            Cell::DateTime(NOV_27_1730_UTC),
            Cell::YesNo(false),
            Cell::text(NOTE_MULTILINE),
            Cell::Empty,
        ],
        vec![
            Cell::text("凤凰街道明珠社区3栋4单元601"),
            Cell::text("陈志强"),
            Cell::text("李建国"),
            Cell::DateTime(NOV_28_0930 + 3_600_000),
            Cell::YesNo(true),
            Cell::text("-2℃仍独居,+86 138 0000 0000 @社区"),
            Cell::Empty,
        ],
    ]
}

fn summary_rows() -> Vec<Row> {
    vec![
        vec![Cell::text("滨湖社区第1网格"), Cell::Integer(312), Cell::Percent(0.875), Cell::Decimal(4.756)],
        vec![Cell::text("滨湖社区第2网格"), Cell::Integer(298), Cell::Percent(1.0), Cell::Empty],
    ]
}

fn no_progress() -> impl FnMut(usize) {
    |_| {}
}

fn zip_entry(path: &Path, name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

fn read_csv(path: &Path) -> (Vec<u8>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap();
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).expect("CSV starts with a UTF-8 BOM");
    let records = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (bytes, records)
}

#[test]
fn xlsx_reads_back_with_real_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("走访台账.xlsx");
    let written = write_xlsx(&VISITS, visit_rows(), &path, Lang::Zh, &mut no_progress()).unwrap();
    assert_eq!(written, 3);

    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    assert_eq!(book.sheet_names(), vec!["走访".to_string()]);
    let range = book.worksheet_range("走访").unwrap();
    assert_eq!(range.height(), 4, "header + 3 rows");
    let header: Vec<String> = range.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(header, ["住户地址", "户主", "走访人", "走访时间", "见到本人", "备注", "回访日期"]);

    let cell = |r: usize, c: usize| range.get((r, c)).unwrap().clone();
    assert_eq!(cell(1, 0), Data::String("凤凰街道滨湖社区7栋2单元302".into()));
    assert_eq!(cell(1, 1), Data::String("张桂兰".into()));
    // Date-times are numbers with a date format (calamine only says DateTime for those),
    // in Shanghai time.
    match cell(1, 3) {
        Data::DateTime(dt) => {
            assert!(dt.is_datetime());
            assert_eq!(dt.as_datetime(), Some(local(2026, 11, 28, 9, 30)));
        }
        other => panic!("visit time should be an Excel date-time, got {other:?}"),
    }
    match cell(2, 3) {
        Data::DateTime(dt) => assert_eq!(dt.as_datetime(), Some(local(2026, 11, 28, 1, 30))),
        other => panic!("visit time should be an Excel date-time, got {other:?}"),
    }
    match cell(1, 6) {
        Data::DateTime(dt) => assert_eq!(dt.as_datetime(), Some(local(2026, 12, 5, 0, 0))),
        other => panic!("follow-up should be an Excel date, got {other:?}"),
    }
    assert_eq!(cell(1, 4), Data::String("是".into()));
    assert_eq!(cell(2, 4), Data::String("否".into()));
    assert_eq!(cell(1, 5), Data::String(NOTE_WITH_PUNCTUATION.into()));
    assert_eq!(cell(2, 5), Data::String(NOTE_MULTILINE.into()));
    assert_eq!(cell(2, 6), Data::Empty);
    // The would-be formula is plain text, exactly as typed, and no formula exists anywhere.
    assert_eq!(cell(2, 1), Data::String("=HYPERLINK(\"http://evil.example\",\"点此\")".into()));
    let formulas = book.worksheet_formula("走访").unwrap();
    assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()), "no formulas: {formulas:?}");

    // The number formats people see.
    let styles = zip_entry(&path, "xl/styles.xml");
    assert!(styles.contains(r#"formatCode="yyyy-mm-dd hh:mm""#), "{styles}");
    assert!(styles.contains(r#"formatCode="yyyy-mm-dd""#), "{styles}");
    assert!(styles.contains(r#"quotePrefix="1""#), "the formula-like name is quote-prefixed: {styles}");
}

#[test]
fn xlsx_numbers_and_percentages_are_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.xlsx");
    write_xlsx(&SUMMARY, summary_rows(), &path, Lang::Zh, &mut no_progress()).unwrap();
    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    let range = book.worksheet_range("汇总").unwrap();
    let number = |r: usize, c: usize| match range.get((r, c)).unwrap() {
        Data::Float(x) => *x,
        Data::Int(x) => *x as f64,
        other => panic!("({r},{c}) should be a number, got {other:?}"),
    };
    assert_eq!(number(1, 1), 312.0);
    assert_eq!(number(1, 2), 0.875);
    assert_eq!(number(2, 2), 1.0);
    assert_eq!(number(1, 3), 4.756, "the full value is kept; the format shows two decimals");
    assert_eq!(range.get((2, 3)), Some(&Data::Empty));
    let styles = zip_entry(&path, "xl/styles.xml");
    assert!(styles.contains(r#"formatCode="0.0%""#), "{styles}");
    assert!(styles.contains(r#"formatCode="0.00""#), "{styles}");
    // The width hint is used as given.
    let sheet = zip_entry(&path, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains(r#"<col min="1" max="1" width="20.7109375" customWidth="1"/>"#), "{sheet}");
}

#[test]
fn xlsx_header_is_frozen_filtered_and_printed_on_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("visits.xlsx");
    write_xlsx(&VISITS, visit_rows(), &path, Lang::Zh, &mut no_progress()).unwrap();

    let sheet = zip_entry(&path, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#),
        "frozen header row: {sheet}"
    );
    assert!(sheet.contains(r#"<autoFilter ref="A1:G4"/>"#), "autofilter over header and rows: {sheet}");
    assert!(sheet.contains(r#"<pageSetUpPr fitToPage="1"/>"#), "fit to page: {sheet}");
    assert!(sheet.contains(r#"paperSize="9""#), "A4: {sheet}");
    assert!(sheet.contains(r#"orientation="landscape""#), "landscape: {sheet}");
    assert!(sheet.contains(r#"fitToHeight="0""#), "one page wide, any number tall: {sheet}");
    assert!(
        sheet.contains("<oddHeader>&amp;C&amp;\"-,Bold\"&amp;14走访台账</oddHeader>"),
        "title in the page header: {sheet}"
    );
    // The two-line note wraps, and its row is tall enough for both lines (a program must
    // set that: LibreOffice does not grow rows when it opens the file).
    let row3 = sheet.split("<row r=\"3\"").nth(1).unwrap().split('>').next().unwrap();
    assert!(row3.contains(r#"ht="30""#) && row3.contains(r#"customHeight="1""#), "row 3: {row3}");
    let row2 = sheet.split("<row r=\"2\"").nth(1).unwrap().split('>').next().unwrap();
    assert!(!row2.contains("ht="), "a one-line row keeps the default height: {row2}");
    // Header cells bold (the header format is the only bold one).
    let styles = zip_entry(&path, "xl/styles.xml");
    assert!(styles.contains("<b/>"), "{styles}");
    assert!(styles.contains(r#"wrapText="1""#), "{styles}");

    let workbook = zip_entry(&path, "xl/workbook.xml");
    assert!(
        workbook.contains(r#"name="_xlnm.Print_Titles" localSheetId="0">走访!$1:$1<"#),
        "repeat header row: {workbook}"
    );
    assert!(workbook.contains("_xlnm._FilterDatabase"), "{workbook}");

    // Widths fit the content, CJK counting double: the 16-character address (28 units)
    // is wider than the 是/否 column, whose header sets its width.
    let widths: Vec<f64> = sheet
        .split("<col ")
        .skip(1)
        .map(|c| c.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(widths.len(), 7, "{sheet}");
    assert!(widths[0] >= 28.0, "address column {widths:?}");
    assert!(widths[4] < widths[0] && widths[4] >= 8.0 + 3.0, "yes/no column {widths:?}");
    assert!(widths[3] >= 16.0, "date-time column {widths:?}");
}

#[test]
fn english_headers_and_yes_no() {
    let dir = tempfile::tempdir().unwrap();
    let xlsx = dir.path().join("visits-en.xlsx");
    let csv = dir.path().join("visits-en.csv");
    write_xlsx(&VISITS, visit_rows(), &xlsx, Lang::En, &mut no_progress()).unwrap();
    write_csv(&VISITS, visit_rows(), &csv, Lang::En, &mut no_progress()).unwrap();

    let mut book: Xlsx<_> = open_workbook(&xlsx).unwrap();
    let range = book.worksheet_range("Visits").unwrap();
    assert_eq!(range.get((0, 3)), Some(&Data::String("Visit time".into())));
    assert_eq!(range.get((1, 4)), Some(&Data::String("Yes".into())));
    assert_eq!(range.get((2, 4)), Some(&Data::String("No".into())));
    assert!(zip_entry(&xlsx, "xl/worksheets/sheet1.xml").contains("Visit ledger</oddHeader>"));

    let (_, records) = read_csv(&csv);
    assert_eq!(
        records[0],
        ["Address", "Head of household", "Visitor", "Visit time", "Met in person", "Notes", "Follow-up"]
    );
    assert_eq!(records[1][4], "Yes");
}

#[test]
fn csv_opens_in_excel_with_chinese_intact_and_no_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("走访台账.csv");
    let written = write_csv(&VISITS, visit_rows(), &path, Lang::Zh, &mut no_progress()).unwrap();
    assert_eq!(written, 3);

    let (bytes, records) = read_csv(&path);
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "BOM so Excel reads UTF-8");
    assert!(bytes.ends_with(b"\r\n"), "CRLF line ends");
    assert_eq!(records.len(), 4);
    assert_eq!(records[0], ["住户地址", "户主", "走访人", "走访时间", "见到本人", "备注", "回访日期"]);
    assert_eq!(
        records[1],
        [
            "凤凰街道滨湖社区7栋2单元302",
            "张桂兰",
            "李建国",
            "2026-11-28 09:30",
            "是",
            NOTE_WITH_PUNCTUATION,
            "2026-12-05"
        ]
    );
    // Shanghai time, not UTC: 17:30 UTC on the 27th is 01:30 on the 28th.
    assert_eq!(records[2][3], "2026-11-28 01:30");
    assert_eq!(records[2][4], "否");
    assert_eq!(records[2][5], NOTE_MULTILINE, "newline survives inside a quoted field");
    assert_eq!(records[2][6], "", "an empty cell is an empty field");
    // Formula injection: the leading ' makes Excel show text instead of running it.
    assert_eq!(records[2][1], "'=HYPERLINK(\"http://evil.example\",\"点此\")");
    assert_eq!(records[3][5], "'-2℃仍独居,+86 138 0000 0000 @社区");

    // The raw bytes: fields with commas, quotes and newlines are quoted, quotes doubled.
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.contains("\"血压正常,已提醒按时服药；老人说\"\"下周再来\"\"\""), "{text}");
    assert!(text.contains("\"门口堆放杂物\n已联系物业清理\""), "{text}");
    assert!(text.starts_with("住户地址,户主,走访人,走访时间,见到本人,备注,回访日期\r\n"), "{text}");
}

#[test]
fn csv_numbers_and_percentages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.csv");
    write_csv(&SUMMARY, summary_rows(), &path, Lang::Zh, &mut no_progress()).unwrap();
    let (_, records) = read_csv(&path);
    assert_eq!(records[0], ["网格", "户数", "覆盖率", "满意度"]);
    assert_eq!(records[1], ["滨湖社区第1网格", "312", "87.5%", "4.76"]);
    assert_eq!(records[2], ["滨湖社区第2网格", "298", "100.0%", ""]);
}

#[test]
fn progress_every_few_thousand_rows_and_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2 * PROGRESS_EVERY + 345;
    let rows = || {
        (0..n).map(|i| {
            vec![
                Cell::text(format!("滨湖社区第{}网格", i % 7 + 1)),
                Cell::Integer(i as i64),
                Cell::Percent(0.5),
                Cell::Decimal(4.5),
            ]
        })
    };
    for format in ["xlsx", "csv"] {
        let path = dir.path().join(format!("many.{format}"));
        let mut calls = Vec::new();
        let written = if format == "xlsx" {
            write_xlsx(&SUMMARY, rows(), &path, Lang::Zh, &mut |k| calls.push(k)).unwrap()
        } else {
            write_csv(&SUMMARY, rows(), &path, Lang::Zh, &mut |k| calls.push(k)).unwrap()
        };
        assert_eq!(written, n);
        assert_eq!(calls, [PROGRESS_EVERY, 2 * PROGRESS_EVERY, n], "{format}");
    }
    let mut book: Xlsx<_> = open_workbook(dir.path().join("many.xlsx")).unwrap();
    assert_eq!(book.worksheet_range("汇总").unwrap().height(), n + 1);
    assert_eq!(read_csv(&dir.path().join("many.csv")).1.len(), n + 1);

    // An empty ledger is still a ledger: the header row, and one progress call with 0.
    for format in ["xlsx", "csv"] {
        let path = dir.path().join(format!("empty.{format}"));
        let mut calls = Vec::new();
        let written = if format == "xlsx" {
            write_xlsx(&SUMMARY, Vec::new(), &path, Lang::Zh, &mut |k| calls.push(k)).unwrap()
        } else {
            write_csv(&SUMMARY, Vec::new(), &path, Lang::Zh, &mut |k| calls.push(k)).unwrap()
        };
        assert_eq!((written, calls), (0, vec![0]), "{format}");
    }
    let mut book: Xlsx<_> = open_workbook(dir.path().join("empty.xlsx")).unwrap();
    assert_eq!(book.worksheet_range("汇总").unwrap().height(), 1);
}

#[test]
fn errors_are_clear_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("no-such-dir").join("x.xlsx");
    let e = write_xlsx(&VISITS, visit_rows(), &missing, Lang::Zh, &mut no_progress()).unwrap_err();
    assert!(matches!(e, LedgerError::Create { .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot create ") && e.to_string().contains("no-such-dir"), "{e}");
    let e = write_csv(&VISITS, visit_rows(), &missing, Lang::Zh, &mut no_progress()).unwrap_err();
    assert!(matches!(e, LedgerError::Create { .. }), "{e:?}");

    for format in ["xlsx", "csv"] {
        let write = |rows: Vec<Row>, path: &Path| {
            if format == "xlsx" {
                write_xlsx(&SUMMARY, rows, path, Lang::Zh, &mut no_progress())
            } else {
                write_csv(&SUMMARY, rows, path, Lang::Zh, &mut no_progress())
            }
        };
        let path = dir.path().join(format!("bad.{format}"));
        let mut rows = summary_rows();
        rows.push(vec![Cell::text("滨湖社区第3网格"), Cell::Integer(1)]);
        let e = write(rows, &path).unwrap_err();
        assert_eq!(e.to_string(), "row 3 has 2 cells but the ledger has 4 columns", "{format}");
        assert!(!path.exists(), "{format}: a failed export leaves no file");

        let mut rows = summary_rows();
        rows[1][2] = Cell::text("87.5%");
        let e = write(rows, &path).unwrap_err();
        assert_eq!(e.to_string(), "row 2, column 覆盖率: a text cell in a percent column", "{format}");
        assert!(!path.exists(), "{format}: a failed export leaves no file");
    }

    // A full disk (Linux's /dev/full fails every write with ENOSPC).
    if Path::new("/dev/full").exists() {
        let many = || (0..20_000).map(|_| visit_rows().remove(0));
        let e = write_csv(&VISITS, many(), "/dev/full", Lang::Zh, &mut no_progress()).unwrap_err();
        assert!(matches!(e, LedgerError::DiskFull { .. }), "{e:?}");
        assert_eq!(e.to_string(), "the disk is full: /dev/full could not be written");
        let e = write_xlsx(&VISITS, many(), "/dev/full", Lang::Zh, &mut no_progress()).unwrap_err();
        assert!(matches!(e, LedgerError::DiskFull { .. }), "{e:?}");
        assert!(Path::new("/dev/full").exists(), "the device is never removed");
    }
}

#[test]
fn more_rows_than_excel_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.xlsx");
    let rows = (0..=MAX_XLSX_ROWS).map(|_| vec![Cell::Empty, Cell::Empty, Cell::Empty, Cell::Empty]);
    let e = write_xlsx(&SUMMARY, rows, &path, Lang::Zh, &mut no_progress()).unwrap_err();
    assert!(matches!(e, LedgerError::TooManyRows), "{e:?}");
    assert!(e.to_string().contains("export a shorter period or as CSV"), "{e}");
    assert!(!path.exists());
}

#[test]
fn a_title_with_ampersand_and_a_run_time_title() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.xlsx");
    let ledger = VISITS.with_title(Label::owned("滨湖社区 2026年11月 走访台账 & 回访", "Visits & follow-ups"));
    write_xlsx(&ledger, visit_rows(), &path, Lang::Zh, &mut no_progress()).unwrap();
    let sheet = zip_entry(&path, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains("走访台账 &amp;&amp; 回访</oddHeader>"), "a literal & in the header: {sheet}");
}
