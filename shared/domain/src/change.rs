//! A change of an orders-table item (an order or live row) as its change feed reports it: the
//! DynamoDB stream in AWS, the change log of the embedded store. [`ChangeKind`] is the one name
//! of what happened and [`OrderChange`] the one type of a change; every store and consumer uses
//! them.
//!
//! [`decode_change`] is the one decoder of a stream record's images (DynamoDB's attribute-value
//! items, as `serde_dynamo` carries them: the Lambda event's images and the Streams API's
//! convert to it) into the domain's [`OrderRecord`]: the fan-out and the stream reader both use
//! it, and so will every later consumer of the stream. The item layout itself has one owner,
//! the tagged [`OrderRecord`] (`itemType` = `order` | `live`).

use std::fmt;
use std::str::FromStr;

use serde_dynamo::{AttributeValue, Item};

use crate::events::OrderRecord;

/// The attribute that tells the rows of the orders table apart.
pub const ITEM_TYPE: &str = "itemType";

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

/// One change of an order or live item: what happened and the item before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderChange {
    /// Insert, modify or remove.
    pub kind: ChangeKind,
    /// The item before (`None` for an insert).
    pub old: Option<OrderRecord>,
    /// The item after (`None` for a removal).
    pub new: Option<OrderRecord>,
}

impl OrderChange {
    /// The change from `old` to `new`; `None` when there is neither.
    pub fn between(old: Option<OrderRecord>, new: Option<OrderRecord>) -> Option<OrderChange> {
        let kind = ChangeKind::of(old.as_ref(), new.as_ref())?;
        Some(OrderChange { kind, old, new })
    }
}

/// A stream image of an order or live row does not parse as an [`OrderRecord`].
#[derive(Debug, thiserror::Error)]
#[error("the {which} image of an {item_type} row does not parse")]
pub struct ImageError {
    /// `old` or `new`.
    pub which: &'static str,
    /// `order` or `live`.
    pub item_type: &'static str,
    /// Why.
    #[source]
    pub source: serde_dynamo::Error,
}

/// What one image holds.
#[derive(Debug)]
// One per image, dropped at once; boxing the record would only add an allocation per image.
#[allow(clippy::large_enum_variant)]
enum Image {
    /// No image (the old image of an insert, the new image of a removal).
    Absent,
    /// A row that is not an order or live row (a counter, a profile, an unknown `itemType`).
    Other,
    /// An order or live row.
    Record(OrderRecord),
}

fn decode_image(item: &Item, which: &'static str) -> Result<Image, ImageError> {
    if item.is_empty() {
        return Ok(Image::Absent);
    }
    let item_type = match item.get(ITEM_TYPE) {
        Some(AttributeValue::S(t)) if t == "order" => "order",
        Some(AttributeValue::S(t)) if t == "live" => "live",
        _ => return Ok(Image::Other),
    };
    serde_dynamo::from_item(item.clone())
        .map(Image::Record)
        .map_err(|source| ImageError {
            which,
            item_type,
            source,
        })
}

/// Decodes a stream record's old and new image (an empty item when the record has none).
///
/// Returns `Ok(None)` when the record is not a change of an order or live row: either image is
/// of another row (a counter, a profile), or neither image is there. Fails when an order or
/// live image does not parse as an [`OrderRecord`].
pub fn decode_change(old: &Item, new: &Item) -> Result<Option<OrderChange>, ImageError> {
    let old = decode_image(old, "old")?;
    let new = decode_image(new, "new")?;
    let record = |image| match image {
        Image::Record(r) => Some(r),
        _ => None,
    };
    match (old, new) {
        (Image::Other, _) | (_, Image::Other) => Ok(None),
        (old, new) => Ok(OrderChange::between(record(old), record(new))),
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

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect::<std::collections::HashMap<_, _>>()
            .into()
    }

    #[test]
    fn images_of_rows_that_are_not_orders_decode_as_no_change() {
        let counter = item(&[
            ("pk", "COUNTER#orderNumber#20261203"),
            ("itemType", "counter"),
        ]);
        let empty = item(&[]);
        assert!(decode_change(&empty, &counter).unwrap().is_none());
        assert!(decode_change(&empty, &empty).unwrap().is_none());
    }

    #[test]
    fn an_order_image_that_does_not_parse_is_an_error_naming_the_image() {
        let broken = item(&[("itemType", "live"), ("orderId", "o-1")]);
        let empty = item(&[]);
        let err = decode_change(&empty, &broken).unwrap_err();
        assert_eq!((err.which, err.item_type), ("new", "live"));
    }
}
