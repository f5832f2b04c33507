//! Reading the shell of the documentation: the snippets of a Markdown document (shell blocks and inline code),
//! the `keyledger …` commands in them (a small shell lexer, enough for documentation), and a dry parse of each
//! with the binary's own clap definition. Used by tests/docs_examples.rs.

/// Shell snippets of a document with the line each starts on: every logical line (`\` continuations joined) of
/// a ```sh/```bash/```shell block, and every `inline code span` in prose (written metavariables such as
/// `<size>` become `X`).
pub fn snippets(doc: &str) -> Vec<(usize, String)> {
    let (mut out, mut prose) = (Vec::new(), String::new());
    let mut fence: Option<bool> = None; // inside a block: whether it is shell
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in doc.lines().enumerate() {
        let number = index + 1;
        if let Some(info) = line.trim_start().strip_prefix("```").map(str::trim) {
            fence = match fence {
                Some(_) => None,
                None => Some(matches!(info, "sh" | "bash" | "shell")),
            };
            prose.push('\n');
            continue;
        }
        match fence {
            None => prose.push_str(line),
            Some(true) => {
                let (start, mut text) = pending.take().unwrap_or((number, String::new()));
                match line.strip_suffix('\\') {
                    Some(head) => {
                        text.push_str(head);
                        text.push(' ');
                        pending = Some((start, text));
                    }
                    None => {
                        text.push_str(line);
                        out.push((start, text));
                    }
                }
            }
            Some(false) => {}
        }
        prose.push('\n');
    }
    let chars: Vec<char> = prose.chars().collect();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        if chars[i] != '`' {
            line += usize::from(chars[i] == '\n');
            i += 1;
            continue;
        }
        let ticks = chars[i..].iter().take_while(|c| **c == '`').count();
        let body = i + ticks;
        let end = (body..chars.len()).find(|&j| {
            chars[j..].iter().take_while(|c| **c == '`').count() == ticks
                && (j == 0 || chars[j - 1] != '`')
        });
        let Some(end) = end else { break };
        let span: String = chars[body..end].iter().collect();
        out.push((line, metavariables(&span.replace('\n', " "))));
        line += span.matches('\n').count();
        i = end + ticks;
    }
    out
}

/// `<a written metavariable>` → `X`, so that it is not read as a redirection.
pub fn metavariables(span: &str) -> String {
    let mut out = String::new();
    let mut rest = span;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        match after.find('>') {
            Some(close) if after.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                out.push_str(&rest[..open]);
                out.push('X');
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A word of a shell command as the shell would pass it, with `$VAR` and `$(…)` as `X`.
#[derive(Clone, Debug, Default)]
pub struct Word {
    pub text: String,
    /// Some of it was quoted (brackets in it are not synopsis).
    quoted: bool,
    /// A variable, a command substitution or an UPPERCASE placeholder: its value is unknown.
    unknown: bool,
}

/// A small shell lexer: the simple commands of `src` (split at `| ; & ( ) < >`, comments dropped), including
/// those inside `$(…)`. Enough for documentation, not a shell.
fn simple_commands(src: &str, out: &mut Vec<Vec<Word>>) {
    let chars: Vec<char> = src.chars().collect();
    let (mut command, mut word): (Vec<Word>, Option<Word>) = (Vec::new(), None);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' if word.is_none() => {
                i = chars[i..]
                    .iter()
                    .position(|c| *c == '\n')
                    .map_or(chars.len(), |p| i + p);
                continue;
            }
            c if c.is_whitespace() && c != '\n' => command.extend(word.take()),
            '\'' | '"' => {
                let w = word.get_or_insert_with(Word::default);
                w.quoted = true;
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if c == '"' && chars[i] == '$' {
                        i = substitution(&chars, i, w, out);
                        continue;
                    }
                    if c == '"' && chars[i] == '\\' {
                        i += 1;
                    }
                    w.text.extend(chars.get(i));
                    i += 1;
                }
            }
            '\\' => {
                i += 1;
                word.get_or_insert_with(Word::default)
                    .text
                    .extend(chars.get(i));
            }
            '$' => {
                i = substitution(&chars, i, word.get_or_insert_with(Word::default), out);
                continue;
            }
            '\n' | '|' | ';' | '&' | '(' | ')' | '<' | '>' => {
                command.extend(word.take());
                if !command.is_empty() {
                    out.push(std::mem::take(&mut command));
                }
            }
            c => word.get_or_insert_with(Word::default).text.push(c),
        }
        i += 1;
    }
    command.extend(word);
    if !command.is_empty() {
        out.push(command);
    }
}

/// `$(…)`, `${…}` or `$NAME` at `chars[at]`: marks `word` unknown (its text gets `X`), lexes the commands inside
/// `$(…)`, and returns the index after it.
fn substitution(chars: &[char], at: usize, word: &mut Word, out: &mut Vec<Vec<Word>>) -> usize {
    let mut i = at + 1;
    match chars.get(i) {
        Some('(') => {
            let (mut depth, mut quote) = (1, None);
            let start = i + 1;
            while depth > 0 && i + 1 < chars.len() {
                i += 1;
                match (quote, chars[i]) {
                    (None, q @ ('\'' | '"')) => quote = Some(q),
                    (Some(q), c) if c == q => quote = None,
                    (None, '(') => depth += 1,
                    (None, ')') => depth -= 1,
                    _ => {}
                }
            }
            let inner: String = chars[start..i.min(chars.len())].iter().collect();
            simple_commands(&inner, out);
            i += 1;
        }
        Some('{') => {
            i = chars[i..]
                .iter()
                .position(|c| *c == '}')
                .map_or(chars.len(), |p| i + p + 1)
        }
        Some(c) if c.is_ascii_alphanumeric() || matches!(c, '_' | '?' | '!' | '$' | '@' | '#') => {
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                i += 1;
            }
        }
        _ => {
            word.text.push('$');
            return i;
        }
    }
    word.text.push('X');
    word.unknown = true;
    i
}

/// The `keyledger …` commands of a snippet, as argument lists without the program name: commands starting with
/// `keyledger` (after `VAR=value` assignments) or run under `time`. Synopsis brackets (`[--json]`) are dropped,
/// a lone `…` after an option stands for its value and is dropped elsewhere.
pub fn keyledger_commands(snippet: &str) -> Vec<Vec<Word>> {
    let mut commands = Vec::new();
    simple_commands(snippet, &mut commands);
    let mut found = Vec::new();
    for command in commands {
        let mut words = command
            .into_iter()
            .skip_while(|w| !w.quoted && w.text.contains('='));
        let Some(first) = words.next() else { continue };
        let rest: Vec<Word> = if first.text == "keyledger" {
            words.collect()
        } else if first.text.rsplit('/').next() == Some("time") {
            words
                .skip_while(|w| w.text != "keyledger")
                .skip(1)
                .collect()
        } else {
            continue;
        };
        if first.text != "keyledger" && rest.is_empty() {
            continue;
        }
        let mut args: Vec<Word> = Vec::new();
        for mut word in rest {
            if !word.quoted {
                word.text = word
                    .text
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
            }
            if word.text == "…" || word.text == "..." {
                match args.last() {
                    Some(option) if option.text.starts_with('-') => word.text = "X".into(),
                    _ => continue,
                }
            }
            let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
            word.unknown |= word.text.starts_with(|c: char| c.is_ascii_uppercase())
                && word.text.chars().all(upper);
            if !word.text.is_empty() || word.quoted {
                args.push(word);
            }
        }
        found.push(args);
    }
    found
}

/// Parses `args` with the binary's own command line (nothing runs). A snippet may stop short of required
/// arguments; an unknown flag or subcommand, or a value the binary refuses, is an error. A placeholder value
/// (`$ID`, `SEQ`, `X`) is tried as a number, a time, a UUID and an address before it is blamed.
pub fn dry_parse(args: &[Word]) -> Result<(), String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::Parser;
    const STAND_INS: [&str; 5] = [
        "1",
        "2026-01-01T00:00:00Z",
        "00000000-0000-4000-8000-000000000000",
        "127.0.0.1:8080",
        "x",
    ];
    let mut texts: Vec<String> = args.iter().map(|w| w.text.clone()).collect();
    let mut tried = vec![0usize; args.len()];
    loop {
        let argv = std::iter::once("keyledger".to_string()).chain(texts.iter().cloned());
        let Err(error) = keyledger::cli::Cli::try_parse_from(argv) else {
            return Ok(());
        };
        match error.kind() {
            ErrorKind::MissingRequiredArgument
            | ErrorKind::MissingSubcommand
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            | ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion => return Ok(()),
            ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
                let value = match error.get(ContextKind::InvalidValue) {
                    Some(ContextValue::String(value)) => value.clone(),
                    _ => String::new(),
                };
                if value.is_empty() {
                    return Ok(()); // an option written without its value: a fragment
                }
                let stand_in = (0..args.len())
                    .find(|&i| args[i].unknown && texts[i] == value && tried[i] < STAND_INS.len());
                let Some(i) = stand_in else {
                    return Err(error.render().to_string());
                };
                texts[i] = STAND_INS[tried[i]].to_string();
                tried[i] += 1;
            }
            _ => return Err(error.render().to_string()),
        }
    }
}
