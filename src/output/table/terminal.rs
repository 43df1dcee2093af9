//! What the terminal can show: its width, whether it takes UTF-8 box drawing, and colour.

/// Width assumed when standard output is not a terminal and `COLUMNS` is not set: pipes into
/// pagers, files and mail bodies are usually read in a window about this wide.
pub const PIPED_WIDTH: u16 = 100;

/// Narrowest width fitted to; below it tables would be little more than their borders.
pub const MIN_WIDTH: u16 = 40;

/// When severities are coloured (`--color`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Only on a terminal, and not when `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
    Never,
}

/// How the terminal report is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// Columns to fit in; `None` (`--wide`) lays every table out at its natural width.
    pub width: Option<u16>,
    /// ASCII borders and arrows, for a locale that is not UTF-8 or a dumb terminal.
    pub ascii: bool,
    /// Whether severities are coloured.
    pub color: bool,
}

impl Terminal {
    /// The layout for the main output, as the environment describes it; `tty` says whether
    /// that output is standard output on a terminal (not a file given with `-o`).
    pub fn detect(tty: bool, wide: bool, color: ColorChoice) -> Self {
        // comfy-table asks the terminal for its size when standard output is one.
        let tty_width = if tty {
            comfy_table::Table::new().width()
        } else {
            None
        };
        Self::from_env(|k| std::env::var(k).ok(), tty, tty_width, wide, color)
    }

    /// The layout for an environment read through `env`; `tty` says whether standard output
    /// is a terminal and `tty_width` how wide it is, when known.
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        tty: bool,
        tty_width: Option<u16>,
        wide: bool,
        color: ColorChoice,
    ) -> Self {
        let set = |k: &str| env(k).filter(|v| !v.is_empty());
        let width = set("COLUMNS")
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|&c| c > 0)
            .or(tty_width)
            .unwrap_or(PIPED_WIDTH)
            .max(MIN_WIDTH);
        let dumb = set("TERM").is_some_and(|t| t == "dumb");
        // The first of these that is set names the character set, as setlocale(3) reads them.
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"].into_iter().find_map(set);
        let utf8 = locale.is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        });
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !dumb && set("NO_COLOR").is_none(),
        };
        Terminal {
            width: (!wide).then_some(width),
            ascii: dumb || !utf8,
            color,
        }
    }

    /// A UTF-8 terminal of this width without colour (`None`: `--wide`).
    pub fn plain(width: Option<u16>) -> Self {
        Terminal {
            width,
            ascii: false,
            color: false,
        }
    }

    /// Most rows a table lists: [`super::TERMINAL_ROWS`] when fitting, all kept under `--wide`.
    pub fn row_limit(&self) -> usize {
        if self.width.is_some() {
            super::TERMINAL_ROWS
        } else {
            usize::MAX
        }
    }

    /// `text` with the arrows and ellipses mailsift writes spelled in ASCII when the terminal
    /// wants ASCII; text from the capture keeps its own characters.
    pub fn glyphs(&self, text: &str) -> String {
        if !self.ascii || text.is_ascii() {
            return text.to_string();
        }
        text.replace('→', "->")
            .replace('…', "...")
            .replace('–', "-")
            .replace('×', "x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(vars: &[(&str, &str)], tty: bool, color: ColorChoice) -> Terminal {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Terminal::from_env(env, tty, Some(132), false, color)
    }

    #[test]
    fn width_comes_from_columns_then_the_tty_then_the_pipe_default() {
        let utf8 = ("LANG", "en_US.UTF-8");
        assert_eq!(
            term(&[utf8, ("COLUMNS", "80")], true, ColorChoice::Auto).width,
            Some(80)
        );
        assert_eq!(term(&[utf8], true, ColorChoice::Auto).width, Some(132));
        let piped = Terminal::from_env(|_| None, false, None, false, ColorChoice::Auto);
        assert_eq!(piped.width, Some(PIPED_WIDTH));
        assert_eq!(
            term(&[("COLUMNS", "nonsense")], true, ColorChoice::Auto).width,
            Some(132)
        );
        assert_eq!(
            term(&[("COLUMNS", "10")], true, ColorChoice::Auto).width,
            Some(MIN_WIDTH)
        );
        let wide = Terminal::from_env(|_| None, true, Some(80), true, ColorChoice::Auto);
        assert_eq!(wide.width, None);
    }

    #[test]
    fn locale_is_read_lc_all_first_and_dumb_terminals_get_ascii() {
        let auto = ColorChoice::Auto;
        assert!(!term(&[("LANG", "de_DE.UTF-8")], true, auto).ascii);
        assert!(!term(&[("LC_CTYPE", "C.utf8"), ("LANG", "C")], true, auto).ascii);
        assert!(term(&[("LC_ALL", "C"), ("LANG", "en_US.UTF-8")], true, auto).ascii);
        // An empty LC_ALL is not set: LANG decides.
        assert!(!term(&[("LC_ALL", ""), ("LANG", "en_US.UTF-8")], true, auto).ascii);
        assert!(term(&[], true, auto).ascii, "no locale is the C locale");
        assert!(term(&[("LANG", "en_US.UTF-8"), ("TERM", "dumb")], true, auto).ascii);
    }

    #[test]
    fn colour_only_on_a_tty_without_no_color_unless_forced() {
        let utf8 = ("LANG", "C.UTF-8");
        assert!(term(&[utf8], true, ColorChoice::Auto).color);
        assert!(!term(&[utf8], false, ColorChoice::Auto).color);
        assert!(!term(&[utf8, ("NO_COLOR", "1")], true, ColorChoice::Auto).color);
        assert!(!term(&[utf8, ("TERM", "dumb")], true, ColorChoice::Auto).color);
        assert!(term(&[utf8, ("NO_COLOR", "1")], false, ColorChoice::Always).color);
        assert!(!term(&[utf8], true, ColorChoice::Never).color);
    }

    #[test]
    fn ascii_terminals_get_ascii_arrows() {
        let t = term(&[("LC_ALL", "C")], false, ColorChoice::Auto);
        assert_eq!(t.glyphs("a → b…"), "a -> b...");
        assert_eq!(Terminal::plain(None).glyphs("a → b"), "a → b");
    }
}
