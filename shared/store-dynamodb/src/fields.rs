//! Some attributes of a record's item without building the item: a serializer that takes a
//! struct's fields one by one and converts only those asked for, each with `serde_dynamo` as
//! [`serde_dynamo::to_item`] converts it. The local stack judges the stream's filter criteria on
//! two or three attributes of every live row it logs; building the whole row for that (every
//! field, each timestamp formatted) was a fifth of its instructions per location update.
//! Of a map attribute a filter reads one key (the `eta` map's `etaMinutes`), only that key
//! is converted: converting the whole map and dropping the rest was most of what remained.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::ser::{Error as _, Impossible, SerializeStruct, Serializer};
use serde_dynamo::Error;

use crate::keys::Item;

/// Whether an attribute of a row is wanted, by its name (see
/// [`order_record_attributes`](crate::items::order_record_attributes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted<'a> {
    /// Not this attribute.
    No,
    /// This attribute, whole.
    Whole,
    /// This attribute; when it is a map, only the entries with these keys.
    Keys(&'a BTreeSet<String>),
}

impl Wanted<'_> {
    /// `value`, the attribute so wanted, as it is to be kept: a map with only the keys asked for.
    pub(crate) fn keep(self, value: AttributeValue) -> AttributeValue {
        match (self, value) {
            (Wanted::Keys(keys), AttributeValue::M(mut map)) => {
                map.retain(|key, _| keys.contains(key));
                AttributeValue::M(map)
            }
            (_, value) => value,
        }
    }
}

/// The fields of `value` (a struct, as `serde` serializes it) that `wanted` names, as the
/// attributes [`serde_dynamo::to_item`] makes of them; of a field wanted for some keys only,
/// the struct it holds converts only those fields. Fails for a value that does not serialize
/// as a plain struct (e.g. one with a flattened field, which serializes as a map).
pub(crate) fn named_fields<'k, T: Serialize>(
    value: &T,
    wanted: &dyn Fn(&str) -> Wanted<'k>,
) -> Result<Item, Error> {
    value.serialize(Fields { wanted })
}

/// The attribute of `value` with only `keys` when it is a map: a struct (or `Some` of one)
/// converts only those fields; anything else converts whole and keeps those keys.
fn keys_of<T: ?Sized + Serialize>(
    value: &T,
    keys: &BTreeSet<String>,
) -> Result<AttributeValue, Error> {
    let only = |name: &str| {
        if keys.contains(name) {
            Wanted::Whole
        } else {
            Wanted::No
        }
    };
    match value.serialize(Fields { wanted: &only }) {
        Ok(item) => Ok(AttributeValue::M(item)),
        Err(_) => Ok(Wanted::Keys(keys).keep(serde_dynamo::to_attribute_value(value)?)),
    }
}

struct Fields<'a, 'k> {
    wanted: &'a dyn Fn(&str) -> Wanted<'k>,
}

/// What a struct's fields are gathered in.
struct Gathered<'a, 'k> {
    wanted: &'a dyn Fn(&str) -> Wanted<'k>,
    item: Item,
}

impl SerializeStruct for Gathered<'_, '_> {
    type Ok = Item;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let attribute = match (self.wanted)(key) {
            Wanted::No => return Ok(()),
            Wanted::Whole => serde_dynamo::to_attribute_value(value)?,
            Wanted::Keys(keys) => keys_of(value, keys)?,
        };
        self.item.insert(key.to_owned(), attribute);
        Ok(())
    }

    fn end(self) -> Result<Item, Error> {
        Ok(self.item)
    }
}

fn not_a_struct() -> Error {
    Error::custom("only a struct's fields can be picked")
}

/// The methods of [`Serializer`] for everything but a struct: each fails.
macro_rules! not_a_struct {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, Error> {
            Err(not_a_struct())
        })*
    };
}

impl<'a, 'k> Serializer for Fields<'a, 'k> {
    type Ok = Item;
    type Error = Error;
    type SerializeStruct = Gathered<'a, 'k>;
    type SerializeSeq = Impossible<Item, Error>;
    type SerializeTuple = Impossible<Item, Error>;
    type SerializeTupleStruct = Impossible<Item, Error>;
    type SerializeTupleVariant = Impossible<Item, Error>;
    type SerializeMap = Impossible<Item, Error>;
    type SerializeStructVariant = Impossible<Item, Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Gathered<'a, 'k>, Error> {
        Ok(Gathered {
            wanted: self.wanted,
            item: Item::new(),
        })
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Item, Error> {
        value.serialize(self)
    }

    /// `Some` of a struct is that struct (`serde_dynamo` writes `Some(x)` as `x`).
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Item, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Item, Error> {
        Err(not_a_struct())
    }

    not_a_struct! {
        serialize_bool(bool) -> Item;
        serialize_i8(i8) -> Item;
        serialize_i16(i16) -> Item;
        serialize_i32(i32) -> Item;
        serialize_i64(i64) -> Item;
        serialize_u8(u8) -> Item;
        serialize_u16(u16) -> Item;
        serialize_u32(u32) -> Item;
        serialize_u64(u64) -> Item;
        serialize_f32(f32) -> Item;
        serialize_f64(f64) -> Item;
        serialize_char(char) -> Item;
        serialize_str(&str) -> Item;
        serialize_bytes(&[u8]) -> Item;
        serialize_none() -> Item;
        serialize_unit() -> Item;
        serialize_unit_struct(&'static str) -> Item;
        serialize_unit_variant(&'static str, u32, &'static str) -> Item;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}
