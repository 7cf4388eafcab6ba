//! A change of an orders-table item (an order or live row) as its change feed reports it: the
//! DynamoDB stream in AWS, the change log of the embedded store. [`ChangeKind`] is the one name
//! of what happened; every store and consumer uses it.

use std::fmt;
use std::str::FromStr;

/// What a change did to an item, in DynamoDB Streams' terms (`eventName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The item was created (no old image).
    Insert,
    /// The item was replaced or updated (both images present).
    Modify,
    /// The item was deleted (no new image).
    Remove,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Insert, ChangeKind::Modify, ChangeKind::Remove];

    /// The stored and wire name: `INSERT`, `MODIFY` or `REMOVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Modify => "MODIFY",
            ChangeKind::Remove => "REMOVE",
        }
    }

    /// The kind of a change from its images: `Insert` without an old one, `Remove` without a new
    /// one, else `Modify`; `None` when it has neither.
    pub fn of<T>(old: Option<&T>, new: Option<&T>) -> Option<ChangeKind> {
        match (old, new) {
            (None, Some(_)) => Some(ChangeKind::Insert),
            (Some(_), Some(_)) => Some(ChangeKind::Modify),
            (Some(_), None) => Some(ChangeKind::Remove),
            (None, None) => None,
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not `INSERT`, `MODIFY` or `REMOVE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a change kind (INSERT, MODIFY or REMOVE)")]
pub struct UnknownChangeKind;

impl FromStr for ChangeKind {
    type Err = UnknownChangeKind;

    /// The kind named exactly `INSERT`, `MODIFY` or `REMOVE` (case matters, as on the wire).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownChangeKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_back_from_its_name_and_nothing_else_reads_as_one() {
        for kind in ChangeKind::ALL {
            assert_eq!(kind.as_str().parse::<ChangeKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!("insert".parse::<ChangeKind>(), Err(UnknownChangeKind));
        assert_eq!("".parse::<ChangeKind>(), Err(UnknownChangeKind));
    }

    #[test]
    fn a_changes_kind_follows_from_which_images_it_has() {
        assert_eq!(ChangeKind::of(None, Some(&1)), Some(ChangeKind::Insert));
        assert_eq!(ChangeKind::of(Some(&1), Some(&2)), Some(ChangeKind::Modify));
        assert_eq!(ChangeKind::of(Some(&1), None), Some(ChangeKind::Remove));
        assert_eq!(ChangeKind::of::<u8>(None, None), None);
    }
}
