//! Ledgers (台账): the XLSX and CSV files that street and community offices open in Excel.
//!
//! This module owns the file formats only. A ledger is declared once as data (a [`Ledger`]:
//! title, sheet name and typed [`Column`]s with Chinese and English headers); callers fetch
//! the rows from the store and stream them as [`Row`]s into [`write_xlsx`] or [`write_csv`].
//!
//! ```
//! use gridlink_sync_server::ledger::{Cell, Column, Kind, Label, Lang, Ledger, write_csv};
//!
//! const VISITS: Ledger = Ledger::new(
//!     Label::new("走访台账", "Visit ledger"),
//!     Label::new("走访", "Visits"),
//!     &[
//!         Column::new("住户地址", "Address", Kind::Text),
//!         Column::new("走访时间", "Visit time", Kind::DateTime),
//!         Column::new("见面", "Met", Kind::YesNo),
//!     ],
//! );
//! let rows = vec![vec![
//!     Cell::text("凤凰街道滨湖社区7栋2单元302"),
//!     Cell::DateTime(1_764_293_400_000),
//!     Cell::YesNo(true),
//! ]];
//! let out = std::env::temp_dir().join(format!("ledger-doc-{}.csv", std::process::id()));
//! let written = write_csv(&VISITS, rows, &out, Lang::Zh, &mut |_| {}).unwrap();
//! assert_eq!(written, 1);
//! # std::fs::remove_file(&out).unwrap();
//! ```
//!
//! What both formats guarantee:
//! - headers in the chosen [`Lang`] (Chinese by default);
//! - dates and times as people in Asia/Shanghai read them, whatever the server's time zone;
//! - text is inert: a resident's name or note starting with `=`, `+`, `-` or `@` never turns
//!   into a formula (CSV gets a leading `'`, XLSX writes a quote-prefixed string cell);
//! - a failed export leaves no file behind, so a half-written ledger is never mistaken for
//!   a whole one;
//! - rows are streamed: memory stays flat however long the ledger (XLSX uses
//!   `rust_xlsxwriter`'s constant-memory mode, which spools the sheet to a temporary file in
//!   `TMPDIR`).

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Asia::Shanghai;
use gridlink_shared::time::{Millis, to_datetime};
use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

pub use gridlink_shared::codes::Lang;

/// `progress` is called after every this many rows (and once at the end).
pub const PROGRESS_EVERY: usize = 5_000;

/// Data rows that fit in one Excel sheet (1,048,576 rows less the header).
pub const MAX_XLSX_ROWS: usize = 1_048_575;

/// Rows read ahead to measure the columns that have no width hint.
const WIDTH_SAMPLE_ROWS: usize = 200;

/// Measured widths are kept within these bounds (Excel width units, about one Latin
/// character); longer text wraps inside the column instead of widening the page.
const MIN_WIDTH: usize = 6;
const MAX_WIDTH: usize = 48;

/// Height of one line of text in points (Excel's default row), and the most lines a row
/// is given (Excel's maximum row height is 409 points).
const LINE_HEIGHT: f64 = 15.0;
const MAX_LINES: usize = 27;

/// Excel's limit for the text of one cell, in UTF-16 units.
const MAX_CELL_TEXT: usize = 32_767;

/// A text in both languages of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub zh: Cow<'static, str>,
    pub en: Cow<'static, str>,
}

impl Label {
    /// A fixed label, usable in a `const` ledger declaration.
    pub const fn new(zh: &'static str, en: &'static str) -> Label {
        Label { zh: Cow::Borrowed(zh), en: Cow::Borrowed(en) }
    }

    /// A label built at run time, e.g. a title naming the community and the month.
    pub fn owned(zh: impl Into<String>, en: impl Into<String>) -> Label {
        Label { zh: Cow::Owned(zh.into()), en: Cow::Owned(en.into()) }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// What a column holds, which decides how its cells are written and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any text. ID and phone numbers belong here too (as numbers Excel would round them).
    Text,
    /// A whole number (counts).
    Integer,
    /// A number shown with two decimals.
    Decimal,
    /// A fraction shown as a percentage: 0.875 is `87.5%`.
    Percent,
    /// A calendar day: `2026-11-28`.
    Date,
    /// An instant (UTC millis) shown in Asia/Shanghai: `2026-11-28 09:30`.
    DateTime,
    /// 是 / 否 (Yes / No in English).
    YesNo,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Decimal => "decimal",
            Kind::Percent => "percent",
            Kind::Date => "date",
            Kind::DateTime => "date-time",
            Kind::YesNo => "yes/no",
        }
    }
}

/// One column of a ledger. Plain `'static` data, so ledgers can be `const`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Header in Chinese, e.g. 走访时间.
    pub zh: &'static str,
    /// Header in English, e.g. Visit time.
    pub en: &'static str,
    pub kind: Kind,
    /// Width in characters (a CJK character counts 2); `None` measures the header and the
    /// first rows.
    pub width: Option<u8>,
}

impl Column {
    pub const fn new(zh: &'static str, en: &'static str, kind: Kind) -> Column {
        Column { zh, en, kind, width: None }
    }

    /// The same column with a fixed width in characters (a CJK character counts 2).
    pub const fn width(mut self, width: u8) -> Column {
        self.width = Some(width);
        self
    }

    pub fn header(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }
}

/// A ledger's layout: declared once, then written any number of times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    /// Printed in the page header of the XLSX, e.g. 走访台账.
    pub title: Label,
    /// The XLSX sheet's tab name (at most 31 characters, none of `[]:*?/\`).
    pub sheet: Label,
    pub columns: &'static [Column],
}

impl Ledger {
    pub const fn new(title: Label, sheet: Label, columns: &'static [Column]) -> Ledger {
        Ledger { title, sheet, columns }
    }

    /// The same ledger with another title, e.g. one naming the community and the period.
    pub fn with_title(mut self, title: Label) -> Ledger {
        self.title = title;
        self
    }
}

/// One value; its variant must match its column's [`Kind`] (or be `Empty`).
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Integer(i64),
    Decimal(f64),
    /// A fraction: 0.875 is shown as 87.5%.
    Percent(f64),
    Date(NaiveDate),
    /// UTC milliseconds.
    DateTime(Millis),
    YesNo(bool),
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell::Text(text.into())
    }

    fn kind(&self) -> Option<Kind> {
        Some(match self {
            Cell::Empty => return None,
            Cell::Text(_) => Kind::Text,
            Cell::Integer(_) => Kind::Integer,
            Cell::Decimal(_) => Kind::Decimal,
            Cell::Percent(_) => Kind::Percent,
            Cell::Date(_) => Kind::Date,
            Cell::DateTime(_) => Kind::DateTime,
            Cell::YesNo(_) => Kind::YesNo,
        })
    }
}

/// One ledger row: one [`Cell`] per column, in column order.
pub type Row = Vec<Cell>;

/// Why a ledger could not be written. The output file is removed in every case.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("the disk is full: {} could not be written", path.display())]
    DiskFull { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "the XLSX writer stopped while writing {}: its temporary file in {} could not be written \
         (is that disk full?)",
        path.display(),
        std::env::temp_dir().display()
    )]
    Spool { path: PathBuf },
    #[error("cannot write {} as XLSX: {source}", path.display())]
    Xlsx { path: PathBuf, source: XlsxError },
    #[error("more than {MAX_XLSX_ROWS} rows do not fit in one Excel sheet; export a shorter period or as CSV")]
    TooManyRows,
    /// A bug in the caller: the row does not match the ledger's columns.
    #[error("row {row} has {found} cells but the ledger has {expected} columns")]
    RowWidth { row: usize, found: usize, expected: usize },
    /// A bug in the caller: a cell of the wrong kind for its column.
    #[error("row {row}, column {column}: a {found} cell in a {expected} column")]
    CellKind { row: usize, column: String, expected: &'static str, found: &'static str },
}

/// Writes `rows` as an XLSX workbook of one sheet: a frozen bold header row with an
/// autofilter, fitted column widths, real Excel dates and numbers, and a print setup of A4
/// landscape, one page wide, header row on every page, the title in the page header.
///
/// `progress` gets the number of rows written after every [`PROGRESS_EVERY`] rows and at the
/// end (compressing the file follows the last call). Returns the number of data rows.
pub fn write_xlsx(
    ledger: &Ledger,
    rows: impl IntoIterator<Item = Row>,
    path: impl AsRef<Path>,
    lang: Lang,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, LedgerError> {
    let path = path.as_ref();
    let file = create(path)?;
    let result = xlsx(ledger, &mut rows.into_iter(), file, path, lang, progress);
    if result.is_err() {
        discard(path);
    }
    result
}

/// Writes `rows` as CSV that Excel opens correctly: UTF-8 with a byte-order mark, CRLF line
/// ends, the same headers as [`write_xlsx`], dates as `YYYY-MM-DD`, date-times as
/// `YYYY-MM-DD HH:MM` in Asia/Shanghai, percentages as `87.5%`. Progress and return value as
/// for [`write_xlsx`].
pub fn write_csv(
    ledger: &Ledger,
    rows: impl IntoIterator<Item = Row>,
    path: impl AsRef<Path>,
    lang: Lang,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, LedgerError> {
    let path = path.as_ref();
    let file = create(path)?;
    let result = csv(ledger, &mut rows.into_iter(), file, path, lang, progress);
    if result.is_err() {
        discard(path);
    }
    result
}

fn create(path: &Path) -> Result<File, LedgerError> {
    File::create(path).map_err(|source| LedgerError::Create { path: path.to_owned(), source })
}

/// Removes a failed export. Only a regular file: the path may be a device (`/dev/stdout`).
fn discard(path: &Path) {
    if fs::metadata(path).is_ok_and(|m| m.is_file()) {
        let _ = fs::remove_file(path);
    }
}

fn io_error(path: &Path, source: io::Error) -> LedgerError {
    match source.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => LedgerError::DiskFull { path: path.to_owned() },
        _ => LedgerError::Write { path: path.to_owned(), source },
    }
}

fn xlsx_error(path: &Path, source: XlsxError) -> LedgerError {
    match source {
        XlsxError::IoError(e) => io_error(path, e),
        // A full disk may also come wrapped in the zip writer's error.
        source if disk_full(&source) => LedgerError::DiskFull { path: path.to_owned() },
        source => LedgerError::Xlsx { path: path.to_owned(), source },
    }
}

fn disk_full(mut error: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if let Some(e) = error.downcast_ref::<io::Error>()
            && matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        match error.source() {
            Some(next) => error = next,
            None => return false,
        }
    }
}

/// Rejects rows that do not match the columns: a shifted column in a ledger someone signs
/// for is worse than no ledger.
fn check_row(ledger: &Ledger, row: &Row, n: usize, lang: Lang) -> Result<(), LedgerError> {
    if row.len() != ledger.columns.len() {
        return Err(LedgerError::RowWidth { row: n, found: row.len(), expected: ledger.columns.len() });
    }
    for (cell, column) in row.iter().zip(ledger.columns.iter()) {
        if let Some(kind) = cell.kind()
            && kind != column.kind
        {
            return Err(LedgerError::CellKind {
                row: n,
                column: column.header(lang).to_owned(),
                expected: column.kind.name(),
                found: kind.name(),
            });
        }
    }
    Ok(())
}

fn shanghai(ms: Millis) -> NaiveDateTime {
    to_datetime(ms).with_timezone(&Shanghai).naive_local()
}

fn yes_no(yes: bool, lang: Lang) -> &'static str {
    match (lang, yes) {
        (Lang::Zh, true) => "是",
        (Lang::Zh, false) => "否",
        (Lang::En, true) => "Yes",
        (Lang::En, false) => "No",
    }
}

/// Text a spreadsheet would read as a formula (OWASP's list: `=`, `+`, `-`, `@`, tab, CR).
fn looks_like_formula(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Display width as Excel's column units count it, roughly: CJK and other wide characters
/// take two.
fn display_width(text: &str) -> usize {
    text.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD)
}

fn cell_width(cell: &Cell, lang: Lang) -> usize {
    match cell {
        Cell::Empty => 0,
        // The longest line of a multi-line note.
        Cell::Text(s) => s.lines().map(display_width).max().unwrap_or(0),
        Cell::Integer(n) => n.to_string().len(),
        Cell::Decimal(x) => format!("{x:.2}").len(),
        Cell::Percent(x) => format!("{:.1}%", x * 100.0).len(),
        Cell::Date(_) => 10,
        Cell::DateTime(_) => 16,
        Cell::YesNo(b) => display_width(yes_no(*b, lang)),
    }
}

/// Column widths from the hints, or from the header (plus room for the filter button) and
/// the sampled rows.
fn column_widths(ledger: &Ledger, sample: &[Row], lang: Lang) -> Vec<usize> {
    ledger
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let header = display_width(column.header(lang)) + 3;
            let data = sample.iter().filter_map(|row| row.get(i)).map(|c| cell_width(c, lang)).max().unwrap_or(0) + 2;
            match column.width {
                Some(w) => usize::from(w),
                None => header.max(data).clamp(MIN_WIDTH, MAX_WIDTH),
            }
        })
        .collect()
}

/// Lines a text takes in a column `width` units wide once wrapped; 1 if it needs no
/// wrapping. LibreOffice does not grow a row for wrapped text when it opens the file (the
/// lines overprint the next rows), so the writer sets the height itself.
fn wrapped_lines(text: &str, width: usize) -> usize {
    let usable = width.saturating_sub(1).max(1);
    let lines: usize = text.split('\n').map(|line| display_width(line).div_ceil(usable).max(1)).sum();
    lines.max(1)
}

/// Cuts text to Excel's cell limit instead of failing the whole export over one note.
fn fit_cell_text(text: String) -> String {
    if text.len() <= MAX_CELL_TEXT {
        return text; // UTF-16 units never exceed UTF-8 bytes
    }
    let mut units = 0;
    let mut cut = String::new();
    for c in text.chars() {
        units += c.len_utf16();
        if units > MAX_CELL_TEXT - 1 {
            break;
        }
        cut.push(c);
    }
    cut.push('…');
    cut
}

struct Formats {
    header: Format,
    text: Format,
    wrap: Format,
    quoted: Format,
    quoted_wrap: Format,
    integer: Format,
    decimal: Format,
    percent: Format,
    date: Format,
    datetime: Format,
    yes_no: Format,
}

impl Formats {
    fn new() -> Formats {
        // Vertically centred throughout, so a wrapped note does not leave its row's other
        // cells hanging at the bottom.
        let body = Format::new().set_align(FormatAlign::VerticalCenter);
        let text = body.clone();
        let wrap = body.clone().set_text_wrap();
        Formats {
            header: Format::new()
                .set_bold()
                .set_background_color(Color::RGB(0xDDEBF7))
                .set_border(FormatBorder::Thin)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            // Excel's quote prefix: shown as typed, and it stays text even when edited.
            quoted: text.clone().set_quote_prefix(),
            quoted_wrap: wrap.clone().set_quote_prefix(),
            text,
            wrap,
            integer: body.clone().set_num_format("0"),
            decimal: body.clone().set_num_format("0.00"),
            percent: body.clone().set_num_format("0.0%"),
            date: body.clone().set_num_format("yyyy-mm-dd"),
            datetime: body.clone().set_num_format("yyyy-mm-dd hh:mm"),
            yes_no: body.set_align(FormatAlign::Center),
        }
    }
}

fn xlsx(
    ledger: &Ledger,
    rows: &mut dyn Iterator<Item = Row>,
    file: File,
    path: &Path,
    lang: Lang,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, LedgerError> {
    let sample: Vec<Row> = (&mut *rows).take(WIDTH_SAMPLE_ROWS).collect();
    let widths = column_widths(ledger, &sample, lang);
    let formats = Formats::new();
    let last_col = u16::try_from(ledger.columns.len().saturating_sub(1)).unwrap_or(u16::MAX);
    let err = |e| xlsx_error(path, e);

    let mut book = Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory().map_err(err)?;
    sheet.set_name(ledger.sheet.get(lang)).map_err(err)?;
    print_setup(sheet, ledger, lang).map_err(err)?;
    for (col, (column, width)) in ledger.columns.iter().zip(&widths).enumerate() {
        let col = col as u16;
        sheet.set_column_width(col, *width as f64).map_err(err)?;
        sheet.write_string_with_format(0, col, column.header(lang), &formats.header).map_err(err)?;
    }

    let mut n = 0;
    for row in sample.into_iter().chain(rows) {
        n += 1;
        check_row(ledger, &row, n, lang)?;
        if n > MAX_XLSX_ROWS {
            return Err(LedgerError::TooManyRows);
        }
        // rust_xlsxwriter panics when its spool file cannot be written (e.g. a full disk):
        // turn that into an error instead of taking the server or the CLI down.
        catch_unwind(AssertUnwindSafe(|| write_row(sheet, n as u32, row, &formats, &widths, lang)))
            .map_err(|_| LedgerError::Spool { path: path.to_owned() })?
            .map_err(err)?;
        if n % PROGRESS_EVERY == 0 {
            progress(n);
        }
    }
    sheet.autofilter(0, 0, n as u32, last_col).map_err(err)?;
    if n % PROGRESS_EVERY != 0 || n == 0 {
        progress(n);
    }

    // Through a borrowed buffer, so the last flush and its errors are ours to see.
    let mut out = BufWriter::new(file);
    catch_unwind(AssertUnwindSafe(|| book.save_to_writer(&mut out)))
        .map_err(|_| LedgerError::Spool { path: path.to_owned() })?
        .map_err(err)?;
    out.flush().map_err(|e| io_error(path, e))?;
    sync(out.get_ref(), path)?;
    Ok(n)
}

fn print_setup(sheet: &mut Worksheet, ledger: &Ledger, lang: Lang) -> Result<(), XlsxError> {
    sheet.set_freeze_panes(1, 0)?;
    sheet.set_repeat_rows(0, 0)?;
    sheet.set_landscape();
    sheet.set_paper_size(9); // A4
    sheet.set_print_fit_to_pages(1, 0); // one page wide, as many pages tall as it takes
    sheet.set_print_gridlines(true);
    sheet.set_print_center_horizontally(true);
    // Excel caps the whole header at 255 characters; `&` starts a code in its header
    // syntax and the title is text, so double it.
    let title = ledger.title.get(lang).chars().take(100).collect::<String>().replace('&', "&&");
    sheet.set_header(format!("&C&\"-,Bold\"&14{title}"));
    sheet.set_footer(match lang {
        Lang::Zh => "&C第 &P 页，共 &N 页",
        Lang::En => "&CPage &P of &N",
    });
    Ok(())
}

fn write_row(
    sheet: &mut Worksheet,
    r: u32,
    row: Row,
    f: &Formats,
    widths: &[usize],
    lang: Lang,
) -> Result<(), XlsxError> {
    let mut lines = 1;
    for (col, cell) in row.into_iter().enumerate() {
        let width = widths[col];
        let col = col as u16;
        match cell {
            Cell::Empty => {}
            Cell::Text(s) => {
                let s = fit_cell_text(s);
                let cell_lines = wrapped_lines(&s, width);
                lines = lines.max(cell_lines);
                // write_string never makes a formula; the quote prefix keeps it text when
                // someone edits the cell, too.
                let format = match (looks_like_formula(&s), cell_lines > 1) {
                    (false, false) => &f.text,
                    (false, true) => &f.wrap,
                    (true, false) => &f.quoted,
                    (true, true) => &f.quoted_wrap,
                };
                sheet.write_string_with_format(r, col, s, format)?;
            }
            Cell::Integer(x) => {
                sheet.write_number_with_format(r, col, x as f64, &f.integer)?;
            }
            Cell::Decimal(x) => {
                sheet.write_number_with_format(r, col, x, &f.decimal)?;
            }
            Cell::Percent(x) => {
                sheet.write_number_with_format(r, col, x, &f.percent)?;
            }
            Cell::Date(d) => {
                sheet.write_datetime_with_format(r, col, d, &f.date)?;
            }
            Cell::DateTime(ms) => {
                sheet.write_datetime_with_format(r, col, shanghai(ms), &f.datetime)?;
            }
            Cell::YesNo(b) => {
                sheet.write_string_with_format(r, col, yes_no(b, lang), &f.yes_no)?;
            }
        }
    }
    if lines > 1 {
        sheet.set_row_height(r, LINE_HEIGHT * lines.min(MAX_LINES) as f64)?;
    }
    Ok(())
}

fn csv(
    ledger: &Ledger,
    rows: &mut dyn Iterator<Item = Row>,
    file: File,
    path: &Path,
    lang: Lang,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, LedgerError> {
    let ioe = |e| io_error(path, e);
    let cse = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) => io_error(path, e),
        other => LedgerError::Write { path: path.to_owned(), source: io::Error::other(format!("{other:?}")) },
    };
    let mut out = BufWriter::with_capacity(1 << 16, file);
    // The BOM is what makes Excel read the file as UTF-8 rather than the system code page.
    out.write_all("\u{feff}".as_bytes()).map_err(ioe)?;
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
    w.write_record(ledger.columns.iter().map(|c| c.header(lang))).map_err(cse)?;

    let mut n = 0;
    let mut field = String::new();
    for row in rows {
        n += 1;
        check_row(ledger, &row, n, lang)?;
        for cell in &row {
            field.clear();
            csv_field(cell, lang, &mut field);
            w.write_field(&field).map_err(cse)?;
        }
        w.write_record(None::<&[u8]>).map_err(cse)?;
        if n % PROGRESS_EVERY == 0 {
            progress(n);
        }
    }
    if n % PROGRESS_EVERY != 0 || n == 0 {
        progress(n);
    }
    let out = w.into_inner().map_err(|e| io_error(path, io::Error::new(e.error().kind(), e.error().to_string())))?;
    let file = out.into_inner().map_err(|e| io_error(path, e.into_error()))?;
    sync(&file, path)?;
    Ok(n)
}

fn csv_field(cell: &Cell, lang: Lang, out: &mut String) {
    use std::fmt::Write as _;
    match cell {
        Cell::Empty => {}
        Cell::Text(s) => {
            if looks_like_formula(s) {
                out.push('\'');
            }
            out.push_str(s);
        }
        Cell::Integer(x) => {
            let _ = write!(out, "{x}");
        }
        Cell::Decimal(x) => {
            let _ = write!(out, "{x:.2}");
        }
        Cell::Percent(x) => {
            let _ = write!(out, "{:.1}%", x * 100.0);
        }
        Cell::Date(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        Cell::DateTime(ms) => {
            let _ = write!(out, "{}", shanghai(*ms).format("%Y-%m-%d %H:%M"));
        }
        Cell::YesNo(b) => out.push_str(yes_no(*b, lang)),
    }
}

/// Forces the file to disk so a late write error (a full disk, a network share gone) is
/// reported here, not discovered by whoever opens the ledger.
fn sync(file: &File, path: &Path) -> Result<(), LedgerError> {
    match file.sync_all() {
        // Devices and pipes (`/dev/stdout`) cannot be synced; there is nothing to force.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other.map_err(|e| io_error(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_guard_covers_owasp_prefixes() {
        for s in ["=1+1", "+86 138", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(looks_like_formula(s), "{s:?}");
        }
        for s in ["张桂兰", "1+1", "", "a=b"] {
            assert!(!looks_like_formula(s), "{s:?}");
        }
    }

    #[test]
    fn cjk_counts_double() {
        assert_eq!(display_width("张桂兰"), 6);
        assert_eq!(display_width("7栋2单元302"), 11);
        assert_eq!(display_width("血压正常，已提醒"), 16);
    }

    #[test]
    fn wrapped_lines_count_cjk_double_and_newlines() {
        assert_eq!(wrapped_lines("张桂兰", 10), 1);
        assert_eq!(wrapped_lines("门口堆放杂物\n已联系物业清理", 48), 2);
        // 20 CJK characters are 40 units: three lines of at most 19 units.
        assert_eq!(wrapped_lines(&"张".repeat(20), 20), 3);
        assert_eq!(wrapped_lines("", 10), 1);
    }

    #[test]
    fn long_text_is_cut_to_excel_limit() {
        let long = "张".repeat(40_000);
        let cut = fit_cell_text(long);
        assert_eq!(cut.encode_utf16().count(), MAX_CELL_TEXT);
        assert!(cut.ends_with('…'));
        assert_eq!(fit_cell_text("短".into()), "短");
    }

    #[test]
    fn shanghai_is_utc_plus_eight() {
        // 2026-11-27 17:30 UTC
        let ms = 1_795_800_600_000;
        assert_eq!(shanghai(ms).format("%Y-%m-%d %H:%M").to_string(), "2026-11-28 01:30");
    }
}
