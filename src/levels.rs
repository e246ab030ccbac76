//! The `--levels` syntax both binaries share: comma-separated levels and inclusive ranges, in any
//! order, e.g. `1-5`, `1,3,7`, `7,1-3,3` (→ 1, 2, 3, 7).

use std::str::FromStr;

/// A set of levels, ascending and distinct, parsed from the `--levels` syntax.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LevelSet(pub Vec<u8>);

/// Why a level list could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad --levels {text:?}: {why} (write levels and ranges like `1-5` or `1,3,7`)")]
pub struct LevelsError {
    text: String,
    why: String,
}

impl FromStr for LevelSet {
    type Err = LevelsError;

    fn from_str(text: &str) -> Result<LevelSet, LevelsError> {
        let fail = |why: String| LevelsError {
            text: text.to_string(),
            why,
        };
        let mut levels = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let number = |s: &str| {
                s.trim()
                    .parse::<u8>()
                    .map_err(|_| fail(format!("{part:?} is not a level or a range")))
            };
            let (lo, hi) = (number(lo)?, number(hi)?);
            if lo > hi {
                return Err(fail(format!("the range {part:?} runs backwards")));
            }
            levels.extend(lo..=hi);
        }
        levels.sort_unstable();
        levels.dedup();
        if levels.is_empty() {
            return Err(fail("no levels given".into()));
        }
        Ok(LevelSet(levels))
    }
}

#[cfg(test)]
mod tests {
    use super::LevelSet;

    fn parse(text: &str) -> Result<Vec<u8>, super::LevelsError> {
        text.parse::<LevelSet>().map(|l| l.0)
    }

    #[test]
    fn levels_and_ranges() {
        assert_eq!(parse("1-5").unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(parse("1,3,7").unwrap(), vec![1, 3, 7]);
        assert_eq!(parse("7,1-3,3").unwrap(), vec![1, 2, 3, 7]);
        assert_eq!(parse(" 2 , 4-5 ").unwrap(), vec![2, 4, 5]);
        for bad in ["5-1", "x", "", "1-", "300"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
