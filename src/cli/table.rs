//! The CLI's text tables (key list, usage, reports), drawn by comfy-table as plain text: a header row, columns
//! two spaces apart, no borders or rules, no trailing spaces, one line per row, so the output stays greppable.

use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};

/// Space between two columns.
const GAP: u16 = 2;

/// A borderless table with this header row; the columns at the indexes in `right` (numbers) are aligned right.
pub fn plain_table(header: &[&str], right: &[usize]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        // Never wrapped to a terminal's width: a row stays one line.
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    let last = header.len().saturating_sub(1);
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if index == last { 0 } else { GAP }));
        if right.contains(&index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// The table's lines without trailing spaces: the header, then one line per row.
pub fn table_lines(table: &Table) -> impl Iterator<Item = String> + '_ {
    table.lines().map(|line| line.trim_end().to_string())
}

/// Prints the table (header and rows) to standard output.
pub fn print_table(table: &Table) {
    for line in table_lines(table) {
        println!("{line}");
    }
}
