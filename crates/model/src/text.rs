//! Making untrusted text safe for human output.
//!
//! File names, object names and configuration values come from files that people share. A
//! newline in a file name would let that name start a line of its own in a terminal or CI log
//! (GitHub Actions executes a line that starts with `::error`), and an escape sequence would
//! drive the terminal. Every human output passes such text through [`escape_control`] (one-line
//! fields) or [`control_pictures`] (source lines shown with a caret under a column).

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 controls except tab, DEL, C1 controls,
/// the Unicode line and paragraph separators and the bidirectional overrides that reorder
/// what a reader sees.
pub fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as an escape (`\n`, `\r`, `\u{1b}`), so it
/// prints on one line and cannot emit terminal control sequences.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` with every unsafe character replaced by one visible character (C0 controls by their
/// Unicode control pictures, `␊` for a newline; others by `�`), so columns stay where they
/// were: for source lines shown under a caret.
pub fn control_pictures(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match u32::from(c) {
                _ if !is_unsafe_char(c) => c,
                n @ 0..=0x1f => char::from_u32(0x2400 + n).unwrap_or('\u{FFFD}'),
                0x7f => '\u{2421}',
                _ => '\u{FFFD}',
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_start_a_line_or_drive_a_terminal() {
        assert_eq!(escape_control("plain/file.yaml"), "plain/file.yaml");
        assert!(matches!(escape_control("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_control("a\n::error file=x::owned"),
            "a\\n::error file=x::owned"
        );
        assert_eq!(escape_control("a\r\u{1b}[31mred"), "a\\r\\u{1b}[31mred");
        assert_eq!(escape_control("c1 \u{9b}31m"), "c1 \\u{9b}31m");
        assert_eq!(escape_control("rtl \u{202e}x"), "rtl \\u{202e}x");
        assert_eq!(escape_control("tab\tstays"), "tab\tstays");
        assert!(!escape_control("x\u{2028}y").contains('\u{2028}'));
    }

    #[test]
    fn pictures_keep_columns() {
        let line = "key: \u{1b}[2Jvalue\r";
        let shown = control_pictures(line);
        assert_eq!(shown.chars().count(), line.chars().count());
        assert_eq!(shown, "key: \u{241b}[2Jvalue\u{240d}");
        assert!(!shown.chars().any(is_unsafe_char));
    }
}
