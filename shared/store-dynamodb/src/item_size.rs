//! The size DynamoDB bills for an item, computed straight from a `Serialize` value, without
//! building the item: the same mapping as `serde_dynamo` (strings `S`, numbers `N`, `None` and
//! units `NULL`, sequences `L`, structs and maps `M`, a newtype variant a one-entry `M`) and the
//! same rules as [`size`] (a name's bytes plus its value's; numbers by their
//! significant digits; 3 bytes per list or map plus 1 per element).
//!
//! The local stack meters every store call; building the item of a live row only to sum its
//! sizes was an eighth of its CPU per location update (`make bench-knee`'s profile). A test
//! holds this to [`size`] of the built item.

use std::fmt::{self, Write};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::ser::{self, Serialize};

use crate::keys::Item;

/// Why a value has no size here: a string set, number set or binary set (`serde_dynamo`'s set
/// newtypes), which DynamoDB sizes differently from a list; or a map with a key that is not a
/// string; or the value's own `Serialize` failed. Build the item and use
/// [`size`] for those.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsized(String);

impl ser::Error for Unsized {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unsized(msg.to_string())
    }
}

/// The size of `value` as a top-level item: the sum over its attributes of the name's bytes
/// and the value's size (no map overhead at the top). Fails for values that do not serialize to
/// a map.
pub fn item_size<T: Serialize + ?Sized>(value: &T) -> Result<usize, Unsized> {
    top_level(value.serialize(Sizer(Numbers::Exact))?)
}

/// At least [`item_size`]`(value)`, and equal when it holds no numbers: each number counted
/// at the most a number can take ([`MAX_NUMBER_BYTES`]) instead of by its digits. Several
/// times cheaper for an item of many numbers (a float's digits are its shortest round-trip
/// form): when a bound is all a caller needs (whether the item fits in one capacity unit),
/// it need not find them.
pub fn item_size_at_most<T: Serialize + ?Sized>(value: &T) -> Result<usize, Unsized> {
    top_level(value.serialize(Sizer(Numbers::AtMost))?)
}

/// The size of a value as a top-level item (see [`item_size`]).
fn top_level(size: Size) -> Result<usize, Unsized> {
    match size.kind {
        Kind::Map => Ok(size.bytes - MAP_OVERHEAD - size.elements),
        Kind::Other => Err(Unsized("an item serializes to a map".into())),
    }
}

/// A list or map costs 3 bytes, and each element 1 more.
const MAP_OVERHEAD: usize = 3;

/// The most a number takes: 1 byte and one per two significant digits, of at most 39 (a
/// `u128`'s; a float written by `serde_dynamo` has at most 17, DynamoDB allows 38).
pub const MAX_NUMBER_BYTES: usize = 21;

/// How a [`Sizer`] sizes numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Numbers {
    /// By their significant digits, as DynamoDB does.
    Exact,
    /// Each at [`MAX_NUMBER_BYTES`].
    AtMost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Other,
}

/// The size of one value; for a map also how many entries it has (so an item, the top-level
/// map, can drop the per-element byte DynamoDB charges only inside values).
#[derive(Debug, Clone, Copy)]
struct Size {
    bytes: usize,
    kind: Kind,
    elements: usize,
}

impl Size {
    fn scalar(bytes: usize) -> Self {
        Size {
            bytes,
            kind: Kind::Other,
            elements: 0,
        }
    }
}

/// The size of a number: its significant digits (leading and trailing zeros dropped) halved,
/// rounded up, plus 1; as [`size`] counts `N` values.
fn number<T: fmt::Display>(value: T) -> Size {
    let mut digits = Digits::default();
    // Writing to `Digits` cannot fail.
    let _ = write!(digits, "{value}");
    digits.size()
}

/// The size of a finite float: its shortest round-trip digits, which `Display` (what
/// `serde_dynamo` writes) and `ryu` (written without `core::fmt`'s machinery, several times
/// faster: float digits were most of sizing a live row) both produce; `ryu` may write them with
/// an exponent, whose digits are not the number's.
fn finite_float<T: ryu::Float>(value: T) -> Size {
    let mut buffer = ryu::Buffer::new();
    let written = buffer.format_finite(value);
    let mantissa = written
        .split_once('e')
        .map_or(written, |(mantissa, _)| mantissa);
    let mut digits = Digits::default();
    // Writing to `Digits` cannot fail.
    let _ = digits.write_str(mantissa);
    digits.size()
}

/// Counts the significant digits of a number as it is written.
#[derive(Debug, Default)]
struct Digits {
    /// Digits from the first non-zero one on.
    significant: usize,
    /// Zeros at the end of those.
    trailing_zeros: usize,
}

impl Digits {
    /// The size of a number with these digits.
    fn size(&self) -> Size {
        let significant = self.significant - self.trailing_zeros;
        Size::scalar(significant.max(1).div_ceil(2) + 1)
    }
}

impl Write for Digits {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars().filter(char::is_ascii_digit) {
            if c == '0' {
                if self.significant > 0 {
                    self.significant += 1;
                    self.trailing_zeros += 1;
                }
            } else {
                self.significant += 1;
                self.trailing_zeros = 0;
            }
        }
        Ok(())
    }
}

/// Counts the bytes of a string written through `Display` (`collect_str`).
#[derive(Debug, Default)]
struct Bytes(usize);

impl Write for Bytes {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// A list or map being summed: 3 bytes, plus each element's size and 1; a map's entries add
/// their key's bytes.
#[derive(Debug)]
struct Compound {
    bytes: usize,
    elements: usize,
    kind: Kind,
    /// A variant name wrapping this compound in a one-entry map (tuple and struct variants).
    variant: Option<&'static str>,
    /// Sizes the elements.
    sizer: Sizer,
}

impl Compound {
    fn new(sizer: Sizer, kind: Kind, variant: Option<&'static str>) -> Self {
        Compound {
            bytes: MAP_OVERHEAD,
            elements: 0,
            kind,
            variant,
            sizer,
        }
    }

    fn add<T: Serialize + ?Sized>(&mut self, key_bytes: usize, value: &T) -> Result<(), Unsized> {
        self.bytes += key_bytes + value.serialize(self.sizer)?.bytes + 1;
        self.elements += 1;
        Ok(())
    }

    fn finish(self) -> Size {
        let inner = Size {
            bytes: self.bytes,
            kind: self.kind,
            elements: self.elements,
        };
        match self.variant {
            Some(name) => wrapped(name, inner),
            None => inner,
        }
    }
}

/// `{variant: inner}`: a map of one entry.
fn wrapped(variant: &str, inner: Size) -> Size {
    Size {
        bytes: MAP_OVERHEAD + variant.len() + inner.bytes + 1,
        kind: Kind::Map,
        elements: 1,
    }
}

/// The key of a map entry: a string (its bytes), as DynamoDB map keys are.
struct KeySizer;

/// A map key that is not a string: DynamoDB map keys are.
fn not_a_string<T>() -> Result<T, Unsized> {
    Err(Unsized("a map key is not a string".into()))
}

macro_rules! key_refused {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<usize, Unsized> {
            not_a_string()
        })*
    };
}

impl ser::Serializer for KeySizer {
    type Ok = usize;
    type Error = Unsized;
    type SerializeSeq = ser::Impossible<usize, Unsized>;
    type SerializeTuple = ser::Impossible<usize, Unsized>;
    type SerializeTupleStruct = ser::Impossible<usize, Unsized>;
    type SerializeTupleVariant = ser::Impossible<usize, Unsized>;
    type SerializeMap = ser::Impossible<usize, Unsized>;
    type SerializeStruct = ser::Impossible<usize, Unsized>;
    type SerializeStructVariant = ser::Impossible<usize, Unsized>;

    fn serialize_str(self, v: &str) -> Result<usize, Unsized> {
        Ok(v.len())
    }
    fn serialize_char(self, v: char) -> Result<usize, Unsized> {
        Ok(v.len_utf8())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<usize, Unsized> {
        Ok(variant.len())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<usize, Unsized> {
        value.serialize(self)
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<usize, Unsized> {
        let mut bytes = Bytes::default();
        let _ = write!(bytes, "{value}");
        Ok(bytes.0)
    }
    key_refused!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<usize, Unsized> {
        not_a_string()
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<usize, Unsized> {
        not_a_string()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsized> {
        not_a_string()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsized> {
        not_a_string()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsized> {
        not_a_string()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsized> {
        not_a_string()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsized> {
        not_a_string()
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Unsized> {
        not_a_string()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsized> {
        not_a_string()
    }
}

/// Sizes a value as `serde_dynamo` would map it, its numbers as told.
#[derive(Debug, Clone, Copy)]
struct Sizer(Numbers);

impl Sizer {
    /// The size of a number `exact` sizes.
    fn number(self, exact: impl FnOnce() -> Size) -> Size {
        match self.0 {
            Numbers::Exact => exact(),
            Numbers::AtMost => Size::scalar(MAX_NUMBER_BYTES),
        }
    }
}

/// Numbers (`N`): sized by their significant digits.
macro_rules! numbers {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<Size, Unsized> {
            Ok(self.number(|| number(v)))
        })*
    };
}

/// Floats (`N`): a finite one by its shortest digits ([`finite_float`]), NaN and the
/// infinities as `Display` writes them.
macro_rules! floats {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<Size, Unsized> {
            Ok(self.number(|| if v.is_finite() { finite_float(v) } else { number(v) }))
        })*
    };
}

impl ser::Serializer for Sizer {
    type Ok = Size;
    type Error = Unsized;
    type SerializeSeq = Compound;
    type SerializeTuple = Compound;
    type SerializeTupleStruct = Compound;
    type SerializeTupleVariant = Compound;
    type SerializeMap = MapCompound;
    type SerializeStruct = Compound;
    type SerializeStructVariant = Compound;

    fn serialize_bool(self, _: bool) -> Result<Size, Unsized> {
        Ok(Size::scalar(1))
    }
    numbers!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
    );
    floats!(serialize_f32(f32), serialize_f64(f64));
    fn serialize_char(self, v: char) -> Result<Size, Unsized> {
        Ok(Size::scalar(v.len_utf8()))
    }
    fn serialize_str(self, v: &str) -> Result<Size, Unsized> {
        Ok(Size::scalar(v.len()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Size, Unsized> {
        Ok(Size::scalar(v.len()))
    }
    fn serialize_none(self) -> Result<Size, Unsized> {
        Ok(Size::scalar(1))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Size, Unsized> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Size, Unsized> {
        Ok(Size::scalar(1))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Size, Unsized> {
        Ok(Size::scalar(1))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Size, Unsized> {
        Ok(Size::scalar(variant.len()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Size, Unsized> {
        // serde_dynamo's set newtypes are named "\u{37E}STRINGSET\u{37E}" and the like.
        if name.starts_with('\u{37E}') {
            return Err(Unsized(format!("a set ({name}) is sized as its item")));
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Size, Unsized> {
        Ok(wrapped(variant, value.serialize(self)?))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound, Unsized> {
        Ok(Compound::new(self, Kind::Other, None))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound, Unsized> {
        Ok(Compound::new(self, Kind::Other, None))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound, Unsized> {
        Ok(Compound::new(self, Kind::Other, None))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound, Unsized> {
        Ok(Compound::new(self, Kind::Other, Some(variant)))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapCompound, Unsized> {
        Ok(MapCompound {
            map: Compound::new(self, Kind::Map, None),
            key_bytes: 0,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound, Unsized> {
        Ok(Compound::new(self, Kind::Map, None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound, Unsized> {
        Ok(Compound::new(self, Kind::Map, Some(variant)))
    }
}

/// Lists (sequences, tuples, tuple structs, tuple variants): each element sized, no key.
macro_rules! list_compound {
    ($($trait:ident :: $method:ident),* $(,)?) => {
        $(impl ser::$trait for Compound {
            type Ok = Size;
            type Error = Unsized;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsized> {
                self.add(0, value)
            }
            fn end(self) -> Result<Size, Unsized> {
                Ok(self.finish())
            }
        })*
    };
}

list_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// Structs and struct variants: each field sized with its name.
macro_rules! struct_compound {
    ($($trait:ident),* $(,)?) => {
        $(impl ser::$trait for Compound {
            type Ok = Size;
            type Error = Unsized;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unsized> {
                self.add(key.len(), value)
            }
            fn end(self) -> Result<Size, Unsized> {
                Ok(self.finish())
            }
        })*
    };
}

struct_compound!(SerializeStruct, SerializeStructVariant);

/// A map being summed: its key is sized when it comes, its value right after.
struct MapCompound {
    map: Compound,
    key_bytes: usize,
}

impl ser::SerializeMap for MapCompound {
    type Ok = Size;
    type Error = Unsized;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsized> {
        self.key_bytes = key.serialize(KeySizer)?;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsized> {
        self.map.add(std::mem::take(&mut self.key_bytes), value)
    }
    fn end(self) -> Result<Size, Unsized> {
        Ok(self.map.finish())
    }
}

/// The size of `item` in bytes, as DynamoDB meters it: each attribute's name plus its value;
/// strings and binaries by length, numbers about 1 byte per 2 significant digits + 1, booleans
/// and nulls 1, sets the sum of their elements, lists and maps 3 bytes + 1 per element + the
/// elements (and a map's keys).
pub fn size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// The size of a string attribute `name` holding `value`, as [`size`] counts it, without
/// building the attribute.
pub(crate) fn string_attribute_size(name: &str, value: &str) -> usize {
    name.len() + value.len()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// A number's size: its significant digits (leading and trailing zeros dropped) halved, + 1.
fn number_size(number: &str) -> usize {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.max(1).div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;
    use crate::items::{self, Item};

    fn built_size<T: Serialize>(value: &T) -> usize {
        let item: Item = serde_dynamo::to_item(value).expect("to item");
        items::size(&item)
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    enum Shape {
        Unit,
        Newtype(u32),
        Tuple(i64, String),
        Struct { radius: f64 },
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Everything {
        text: String,
        whole: u64,
        negative: i64,
        fraction: f64,
        round: f64,
        zero: u32,
        flag: bool,
        nothing: Option<u8>,
        something: Option<String>,
        list: Vec<u16>,
        nested: BTreeMap<String, Vec<f64>>,
        unit: Shape,
        newtype: Shape,
        tuple: Shape,
        r#struct: Shape,
        unit_value: (),
    }

    #[test]
    fn a_value_is_sized_as_the_item_serde_dynamo_builds_of_it() {
        // GIVEN a value with every kind of field serde_dynamo maps
        let value = Everything {
            text: "héllo".into(),
            whole: 1_234_500,
            negative: -42,
            fraction: 30.267_153,
            round: 100.0,
            zero: 0,
            flag: true,
            nothing: None,
            something: Some("x".into()),
            list: vec![1, 20, 300],
            nested: BTreeMap::from([("a".into(), vec![0.5, 97.7431]), ("bb".into(), vec![])]),
            unit: Shape::Unit,
            newtype: Shape::Newtype(7),
            tuple: Shape::Tuple(-1, "t".into()),
            r#struct: Shape::Struct { radius: 2.25 },
            unit_value: (),
        };
        // WHEN it is sized without building the item
        // THEN it is the size of the built item
        assert_eq!(item_size(&value).expect("sized"), built_size(&value));
    }

    #[test]
    fn no_number_is_sized_above_the_most_a_number_takes() {
        // GIVEN the numbers with the most digits of every type the sizer takes
        #[derive(Serialize)]
        struct Widest {
            unsigned: u64,
            signed: i64,
            small: i8,
            double: f64,
            tiny: f64,
            single: f32,
        }
        let widest = Widest {
            unsigned: u64::MAX,
            signed: i64::MIN,
            small: i8::MIN,
            double: 0.123_456_789_012_345_67,
            tiny: -f64::MIN_POSITIVE,
            single: 0.123_456_79,
        };
        // WHEN the item is sized exactly and bounded
        let exact = item_size(&widest).unwrap();
        let bound = item_size_at_most(&widest).unwrap();
        // THEN each number counted at MAX_NUMBER_BYTES is at least its exact size
        let names: usize = ["unsigned", "signed", "small", "double", "tiny", "single"]
            .iter()
            .map(|n| n.len())
            .sum();
        assert_eq!(bound, names + 6 * MAX_NUMBER_BYTES);
        assert!(exact <= bound, "{exact} > {bound}");
        assert_eq!(exact, items::size(&serde_dynamo::to_item(&widest).unwrap()));
        // AND a value without numbers is bounded by its size
        let text = BTreeMap::from([("name", "value"), ("other", "text")]);
        assert_eq!(item_size_at_most(&text).unwrap(), item_size(&text).unwrap());
    }

    #[test]
    fn floats_are_sized_by_the_digits_serde_dynamo_writes_whatever_their_magnitude() {
        #[derive(Serialize)]
        struct Float<T> {
            v: T,
        }
        // GIVEN floats of every magnitude (edges, exponents ryu writes, coordinates) and
        // 200 000 random bit patterns, as f64 and as f32
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut doubles = vec![
            0.0,
            -0.0,
            1.0,
            100.0,
            0.1,
            1e-7,
            1.5e-7,
            1e21,
            1.25e22,
            123_456.789,
            30.267_153,
            -97.743_1,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::NAN,
            f64::INFINITY,
        ];
        doubles.extend((0..200_000).map(|_| f64::from_bits(random())));
        let singles: Vec<f32> = doubles
            .iter()
            .map(|d| *d as f32)
            .chain((0..50_000).map(|_| f32::from_bits(random() as u32)))
            .collect();
        // WHEN each is sized without core::fmt, and from its Display text (serde_dynamo's)
        // THEN the sizes agree
        for v in doubles {
            assert_eq!(exact_size(v), number(v).bytes, "{v:e}");
        }
        for v in singles {
            assert_eq!(exact_size(v), number(v).bytes, "{v:e}");
        }
        // AND a few are the size of the built item's number too
        for v in [0.0, 1e-7, 1.25e22, 30.267_153, f64::MAX] {
            assert_eq!(
                item_size(&Float { v }).expect("sized"),
                built_size(&Float { v }),
                "{v:e}"
            );
        }
    }

    /// The exact size of one value, through the sizer's own entry points.
    fn exact_size<T: Serialize>(value: T) -> usize {
        value.serialize(Sizer(Numbers::Exact)).unwrap().bytes
    }

    #[test]
    fn a_value_that_is_not_a_map_is_no_item() {
        // GIVEN a number WHEN it is sized as an item THEN it is refused
        assert!(item_size(&5_u8).is_err());
    }

    #[test]
    fn a_string_set_is_left_to_the_built_item() {
        // GIVEN a struct holding a string set
        #[derive(Serialize)]
        struct WithSet {
            #[serde(with = "serde_dynamo::string_set")]
            rooms: Vec<String>,
        }
        let value = WithSet {
            rooms: vec!["a".into()],
        };
        // WHEN it is sized THEN it is refused (a set is not sized as a list)
        assert!(item_size(&value).is_err());
    }
}
