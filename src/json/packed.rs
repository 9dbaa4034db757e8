//! A [`Value`] packed into one byte string, for documents kept long but read rarely.
//!
//! Why: a parsed tree costs 5–7× its JSON text (a 3.6 KB TEDAPI status answer is a 23 KB
//! tree: a heap block per key, per string and per container). A gateway's raw TEDAPI answers
//! are mapped once per tick and then only kept for `/tedapi/*`; packed, they cost about their
//! text, and [`Packed::value`] gives the tree back, equal to the one packed, when a route
//! asks. Packing is a walk that appends bytes (no parsing, no float formatting).
//!
//! Layout: a tag byte, then for `Int` a zigzag varint, `Float` 8 bytes little-endian, `Str` a
//! varint length and the bytes, `Array` a varint count and the items, `Object` a varint count
//! and (key as `Str` without its tag, value) pairs in order — duplicates kept.

use super::{Map, Value};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const ARRAY: u8 = 6;
const OBJECT: u8 = 7;

/// A packed JSON value.
#[derive(Clone, PartialEq)]
pub struct Packed(Box<[u8]>);

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} bytes)", self.0.len())
    }
}

impl Packed {
    pub fn new(v: &Value) -> Packed {
        let mut out = Vec::new();
        pack(v, &mut out);
        Packed(out.into_boxed_slice())
    }

    /// The value packed (exactly: integers stay integers, key order and duplicates kept).
    pub fn value(&self) -> Value {
        let mut r = Reader(&self.0);
        // Only `new` makes these bytes, so the reader never meets an end it did not write;
        // were it to, the value read so far is cut there rather than anything panicking.
        r.value(0)
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn text(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn pack(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            varint(((i << 1) ^ (i >> 63)) as u64, out);
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Str(s) => {
            out.push(STR);
            text(s, out);
        }
        Value::Array(a) => {
            out.push(ARRAY);
            varint(a.len() as u64, out);
            for x in a {
                pack(x, out);
            }
        }
        Value::Object(m) => {
            out.push(OBJECT);
            varint(m.0.len() as u64, out);
            for (k, x) in &m.0 {
                text(k, out);
                pack(x, out);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if n > self.0.len() {
            return None;
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }

    fn text(&mut self) -> Option<String> {
        let n = usize::try_from(self.varint()?).ok()?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).ok()
    }

    /// A count, capped by the bytes left (each item takes at least one): never a capacity the
    /// bytes cannot back.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        Some(n.min(self.0.len()))
    }

    fn value(&mut self, depth: usize) -> Value {
        self.try_value(depth).unwrap_or(Value::Null)
    }

    fn try_value(&mut self, depth: usize) -> Option<Value> {
        Some(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => {
                let z = self.varint()?;
                Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            FLOAT => {
                let b: [u8; 8] = self.bytes(8)?.try_into().ok()?;
                Value::Float(f64::from_le_bytes(b))
            }
            STR => Value::Str(self.text()?),
            ARRAY if depth < super::MAX_DEPTH => {
                let n = self.count()?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth + 1));
                }
                Value::Array(a)
            }
            OBJECT if depth < super::MAX_DEPTH => {
                let n = self.count()?;
                let mut m = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.text()?;
                    m.push((k, self.value(depth + 1)));
                }
                Value::Object(Map(m))
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_gives_back_the_same_value() {
        let text = r#"{"a": 1, "b": -2.5, "c": [true, false, null, "é\u0000x", 9223372036854775807,
            -9223372036854775808, 1e300, -0.0], "d": {}, "e": [], "a": {"x": {"y": [1]}}}"#;
        let v = crate::json::parse(text).expect("json");
        let p = Packed::new(&v);
        assert_eq!(p.value(), v);
        assert_eq!(p.value().to_py(), v.to_py());
        assert!(p.len() < text.len());
        for i in [i64::MIN, -1, 0, 1, 63, 64, -65, i64::MAX] {
            assert_eq!(Packed::new(&Value::Int(i)).value(), Value::Int(i));
        }
    }

    #[test]
    fn cut_bytes_read_as_far_as_they_go() {
        let v = crate::json::parse(r#"{"k": [1, 2, "three"]}"#).expect("json");
        let p = Packed::new(&v);
        for n in 0..p.0.len() {
            // Never a panic, never an allocation the bytes do not back.
            let _ = Packed(p.0[..n].into()).value();
        }
        assert_eq!(Packed(Box::new([9])).value(), Value::Null);
    }
}
