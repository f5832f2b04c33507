//! The export's lines, read in batches and parsed on every core: each line's JSON (and, for an event line, its
//! fields, canonical body, hash and event) is checked ahead of the in-order pass, which then only links them.

use super::{Check, ExportFailure};
use crate::audit::export_lines::{check_record, parse_line, RecordLine};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::BufRead;

/// Lines read and parsed together (about 1 MB of an export's event lines).
const BATCH: usize = 1024;

/// A parsed line and, for an event line, its record checked without its link to the previous event.
struct Parsed {
    value: Value,
    record: Option<Check<RecordLine>>,
}

/// Reads LF-terminated lines, numbered from 1; remembers the last line number for "cut short" reports.
pub(super) struct Lines<R> {
    reader: R,
    /// The last line handed out.
    number: u64,
    /// Lines read from the reader so far.
    read: u64,
    ahead: VecDeque<(u64, Check<Parsed>)>,
    /// The reader gave its last line (or a line without its line feed, or an error).
    ended: bool,
    /// The record check of the event line last handed out.
    record: Option<Check<RecordLine>>,
}

impl<R: BufRead> Lines<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            reader,
            number: 0,
            read: 0,
            ahead: VecDeque::new(),
            ended: false,
            record: None,
        }
    }

    pub(super) fn next(&mut self) -> Check<Option<(u64, Value)>> {
        if self.ahead.is_empty() && !self.ended {
            self.fill();
        }
        self.record = None;
        let Some((number, parsed)) = self.ahead.pop_front() else {
            return Ok(None);
        };
        self.number = number;
        let parsed = parsed?;
        self.record = parsed.record;
        Ok(Some((number, parsed.value)))
    }

    /// The check of the event line `next` last returned, made as in `check_record` with no previous hash: the
    /// caller compares its link in order (`check_link`) before using it.
    pub(super) fn take_record(&mut self) -> Option<Check<RecordLine>> {
        self.record.take()
    }

    pub(super) fn cut_short<T>(&self, before: &str) -> Check<T> {
        Err(failure(
            self.number + 1,
            format!(
                "the file ends after line {} before its {before}: the export was cut short",
                self.number
            ),
        ))
    }

    fn fill(&mut self) {
        let mut texts: Vec<(u64, Result<String, ExportFailure>)> = Vec::with_capacity(BATCH);
        while texts.len() < BATCH && !self.ended {
            let mut text = String::new();
            match self.reader.read_line(&mut text) {
                Err(e) => {
                    texts.push((
                        self.read + 1,
                        Err(failure(self.read + 1, format!("unreadable: {e}"))),
                    ));
                    self.ended = true;
                }
                Ok(0) => self.ended = true,
                Ok(_) => {
                    self.read += 1;
                    if text.pop() == Some('\n') {
                        texts.push((self.read, Ok(text)));
                    } else {
                        let problem = "the last line has no line feed: the export was cut short";
                        texts.push((self.read, Err(failure(self.read, problem.into()))));
                        self.ended = true;
                    }
                }
            }
        }
        let parsed: Vec<(u64, Check<Parsed>)> = texts
            .into_par_iter()
            .map(|(number, text)| (number, text.and_then(|text| parse(&text, number))))
            .collect();
        self.ahead.extend(parsed);
    }
}

fn parse(text: &str, number: u64) -> Check<Parsed> {
    let value = parse_line(text, number)?;
    let record =
        (value["kind"].as_str() == Some("event")).then(|| check_record(&value, number, None));
    Ok(Parsed { value, record })
}

fn failure(line: u64, problem: String) -> ExportFailure {
    ExportFailure {
        line,
        seq: None,
        problem,
    }
}
