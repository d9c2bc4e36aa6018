//! Text from evidence is written by the attacker: before it reaches a terminal, its control
//! characters (an `ESC[2J` that clears the screen, an OSC that retitles the window, a BEL, a
//! right-to-left override that reverses what follows) are shown, not obeyed.
//!
//! ```
//! use towerwatch_report::{one_line, terminal_safe};
//! assert_eq!(terminal_safe("cmd \u{1b}[2J\u{7}\nnext"), "cmd \\u{1b}[2J\\u{7}\nnext");
//! assert_eq!(one_line("a\nb"), "a\\nb");
//! ```

use std::borrow::Cow;

/// Characters that change how text is shown: bidirectional overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| !keep(c) && (c.is_control() || is_bidi_control(c));
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// A whole text for the terminal: line breaks and tabs kept, every other control shown.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

/// One value from evidence, on one line: line breaks and tabs shown too.
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}
