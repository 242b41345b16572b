//! The one way a value reaches a shell command: `sh!`. Every `{}` of its format string is
//! replaced by the value quoted for POSIX sh, so a node named `w1;touch pwned;#` stays one
//! argument. The format string is checked at compile time: values only as `{}` (never
//! `{name}`, whose value would bypass the quoting), and never inside quotes, a comment or a
//! backtick substitution, where a quoted word would not be one word. Commands and checks are
//! [`Sh`] values, which only `sh!` makes.
//!
//! Values with control characters (a newline, an escape) are rebuilt by `printf '%b'` from an
//! escaped form, so no control character ever appears in a command: pasted into an
//! interactive terminal, a command does exactly what `sh -c` does with it.

use std::fmt;

/// A shell command (or a fragment of one) whose values were quoted by `sh!`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sh(String);

impl Sh {
    /// Only for `sh!`: the rendered text of a checked format string with quoted values.
    #[doc(hidden)]
    pub fn __from_sh_macro(text: String) -> Sh {
        Sh(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Sh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value `sh!` can put into a command. Text and numbers become one quoted word; an [`Sh`]
/// becomes one word too (the script of `sh -c`); [`Code`] is inserted as it is.
pub trait ShellArg {
    fn shell_word(&self) -> String;
}

impl ShellArg for str {
    fn shell_word(&self) -> String {
        quote(self)
    }
}

impl ShellArg for String {
    fn shell_word(&self) -> String {
        quote(self)
    }
}

impl ShellArg for Sh {
    fn shell_word(&self) -> String {
        quote(&self.0)
    }
}

impl<T: ShellArg + ?Sized> ShellArg for &T {
    fn shell_word(&self) -> String {
        (**self).shell_word()
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl ShellArg for $t {
            fn shell_word(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
numbers!(u16, u32, u64, usize, i32, i64);

/// A command made by `sh!`, inserted into another as code (a pipeline stage, a `{ ...; }`
/// group), not as a word.
pub struct Code<'a>(pub &'a Sh);

impl ShellArg for Code<'_> {
    fn shell_word(&self) -> String {
        self.0.0.clone()
    }
}

/// Quotes a value as one POSIX sh word.
pub fn quote(value: &str) -> String {
    if value.chars().any(char::is_control) {
        // `printf '%b'` turns `\0ooo` back into the byte; a backslash stays itself as `\\`.
        // (Command substitution drops trailing newlines; no name legitimately ends in one.)
        let mut escaped = String::with_capacity(value.len() * 2);
        for c in value.chars() {
            if c == '\\' {
                escaped.push_str("\\\\");
            } else if c.is_control() {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    escaped.push_str(&format!("\\0{byte:03o}"));
                }
            } else {
                escaped.push(c);
            }
        }
        return format!("\"$(printf '%b' {})\"", word(&escaped));
    }
    word(value)
}

/// Words as one command line, each quoted (an argv whose length is only known at run time).
pub fn argv<S: AsRef<str>>(words: &[S]) -> Sh {
    Sh(words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" "))
}

fn word(value: &str) -> String {
    // The only error is a NUL byte, which is a control character and never gets here.
    shlex::try_quote(value)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| "''".to_string())
}

/// Whether a `sh!` format string only has `{}` holes at the level of shell words. Checked at
/// compile time by `sh!`.
pub const fn holes_are_words(fmt: &str) -> bool {
    let b = fmt.as_bytes();
    // Quoting state per `$(` nesting level: 0 none, 1 single, 2 double.
    let mut quote = [0u8; 16];
    let mut depth = 0usize;
    let mut comment = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let q = quote[depth];
        if comment {
            if c == b'\n' {
                comment = false;
            } else if c == b'{' && i + 1 < b.len() && b[i + 1] == b'}' {
                return false;
            }
            if c == b'{' || c == b'}' {
                // `{{`/`}}` in a comment are literal braces.
                if i + 1 < b.len() && b[i + 1] == c {
                    i += 2;
                    continue;
                }
                return false;
            }
            i += 1;
            continue;
        }
        if c == b'{' || c == b'}' {
            if i + 1 < b.len() && b[i + 1] == c {
                i += 2;
                continue;
            }
            if c == b'{' && i + 1 < b.len() && b[i + 1] == b'}' && q == 0 {
                i += 2;
                continue;
            }
            return false;
        }
        match q {
            1 => {
                if c == b'\'' {
                    quote[depth] = 0;
                }
            }
            2 => {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    quote[depth] = 0;
                } else if c == b'$' && i + 1 < b.len() && b[i + 1] == b'(' {
                    if depth + 1 >= quote.len() {
                        return false;
                    }
                    depth += 1;
                    quote[depth] = 0;
                    i += 1;
                } else if c == b'`' {
                    return false;
                }
            }
            _ => {
                if c == b'\\' {
                    i += 1;
                } else if c == b'\'' {
                    quote[depth] = 1;
                } else if c == b'"' {
                    quote[depth] = 2;
                } else if c == b'`' {
                    return false;
                } else if c == b'$' && i + 1 < b.len() && b[i + 1] == b'(' {
                    if depth + 1 >= quote.len() {
                        return false;
                    }
                    depth += 1;
                    quote[depth] = 0;
                    i += 1;
                } else if c == b'(' && depth > 0 {
                    // A subshell or `case` pattern inside `$(`: track it as a level too.
                    if depth + 1 >= quote.len() {
                        return false;
                    }
                    depth += 1;
                    quote[depth] = 0;
                } else if c == b')' && depth > 0 {
                    depth -= 1;
                } else if c == b'#'
                    && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\n' || b[i - 1] == b';')
                {
                    comment = true;
                }
            }
        }
        i += 1;
    }
    quote[0] == 0 && depth == 0
}

/// Renders a shell command; every `{}` gets its value quoted as one word (see the module docs).
macro_rules! sh {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        const _: () = assert!(
            $crate::shell::holes_are_words($fmt),
            "sh!: values only as empty braces at word level (never named, in quotes or in comments)"
        );
        $crate::shell::Sh::__from_sh_macro(format!($fmt $(, $crate::shell::ShellArg::shell_word(&$arg))*))
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .output()
            .unwrap_or_else(|e| panic!("sh: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn quoted_values_come_back_unchanged() {
        for value in [
            "w1",
            "talos-w-1;touch pwned;#",
            "a'b",
            "$(id)",
            "`id`",
            "a b\tc",
            "line\nbreak",
            "back\\slash\\n",
            "\u{1b}[31mred",
            "",
            "x=y,z",
            "*",
            "~root",
            "é\u{85}ü",
        ] {
            let command = sh!("printf '%s|' {}", value);
            assert!(
                !command.as_str().chars().any(char::is_control),
                "{command:?} has a control character"
            );
            let expected = format!("{}|", value.trim_end_matches('\n'));
            assert_eq!(run(command.as_str()), expected, "{command}");
        }
    }

    #[test]
    fn safe_values_stay_readable() {
        assert_eq!(
            sh!("kubectl cordon {}", "talos-w-1").as_str(),
            "kubectl cordon talos-w-1"
        );
        assert_eq!(
            sh!("kubectl cordon {}", "a;b").as_str(),
            "kubectl cordon 'a;b'"
        );
    }

    #[test]
    fn format_strings_are_checked() {
        assert!(holes_are_words("kubectl cordon {}"));
        assert!(holes_are_words(
            "out=$(kubectl get node {} -o name) && [ -n \"$out\" ]"
        ));
        assert!(holes_are_words(
            "[ \"$(kubectl get node {} -o jsonpath='{{.x}}')\" = true ]"
        ));
        assert!(holes_are_words("echo {{literal}}"));
        assert!(!holes_are_words("kubectl cordon {node}"));
        assert!(!holes_are_words("kubectl cordon {0}"));
        assert!(!holes_are_words("echo '{}'"));
        assert!(!holes_are_words("echo \"{}\""));
        assert!(!holes_are_words("echo `{}`"));
        assert!(!holes_are_words("echo ok # {} is done"));
        assert!(!holes_are_words("# {}"));
        assert!(!holes_are_words("echo 'unclosed"));
        assert!(holes_are_words("grep -q 'a#b' {}"));
    }
}
