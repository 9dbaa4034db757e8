//! Python semantics over [`Value`], so the mapping can follow pypowerwall line by line.
//!
//! pypowerwall reads gateway JSON with a mix of None-safe `lookup()` calls and plain indexing,
//! and does arithmetic with Python's int/float rules. To give byte-identical answers (and the same
//! `None` where the library would raise), the mapping needs the same primitives:
//! * [`Raise`]: "the library call would have raised here"; callers turn it into `None`.
//! * `None` is [`Value::Null`]; a missing key and an explicit `null` look the same, as in Python.
//! * Arithmetic keeps ints as ints and floats as floats, treats `bool` as an int, and refuses
//!   everything else (where Python would raise `TypeError`).
//!
//! Nothing here panics: integer overflow falls back to float (Python would use a big int).

use std::borrow::Cow;

use crate::json::{py_float, Map, Value};

/// The Python code would have raised an exception at this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raise;

/// Result of a step that may raise in Python.
pub type Py<T> = Result<T, Raise>;

/// Python's `None`, for borrowed lookups that find nothing.
pub static NONE: Value = Value::Null;

/// `isinstance(v, dict)`.
pub trait IsDict {
    fn is_object(&self) -> bool;
}

impl IsDict for Value {
    fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }
}

/// `pypowerwall.helpers.lookup`: follows dict keys, `None` when any step is missing or not a dict.
pub fn lookup<'a>(v: &'a Value, keys: &[&str]) -> &'a Value {
    v.path(keys).unwrap_or(&NONE)
}

/// `d.get(key)`: `d` must be a dict (else `AttributeError`).
pub fn get<'a>(d: &'a Value, key: &str) -> Py<&'a Value> {
    get_or(d, key, &NONE)
}

/// `d.get(key, default)`: the default only when the key is absent (an explicit `null` stays).
pub fn get_or<'a>(d: &'a Value, key: &str, default: &'a Value) -> Py<&'a Value> {
    match d {
        Value::Object(m) => Ok(m.get(key).unwrap_or(default)),
        _ => Err(Raise),
    }
}

/// `(d or {}).get(key, default)`: a falsy `d` acts as an empty dict, any other non-dict raises.
pub fn get_or_empty<'a>(d: &'a Value, key: &str, default: &'a Value) -> Py<&'a Value> {
    if d.truthy() {
        get_or(d, key, default)
    } else {
        Ok(default)
    }
}

/// `d[key]` with a string key: `KeyError` when missing, `TypeError` when `d` is not a dict.
pub fn item<'a>(d: &'a Value, key: &str) -> Py<&'a Value> {
    match d {
        Value::Object(m) => m.get(key).ok_or(Raise),
        _ => Err(Raise),
    }
}

/// `for x in v`: list items, dict keys, string characters; anything else raises.
pub fn iter(v: &Value) -> Py<Vec<Cow<'_, Value>>> {
    match v {
        Value::Array(a) => Ok(a.iter().map(Cow::Borrowed).collect()),
        Value::Object(m) => Ok(m
            .keys()
            .map(|k| Cow::Owned(Value::Str(k.clone())))
            .collect()),
        Value::Str(s) => Ok(s
            .chars()
            .map(|c| Cow::Owned(Value::Str(c.to_string())))
            .collect()),
        _ => Err(Raise),
    }
}

/// `for x in v or []`: a falsy value iterates as empty.
pub fn iter_or_empty(v: &Value) -> Py<Vec<Cow<'_, Value>>> {
    if v.truthy() {
        iter(v)
    } else {
        Ok(Vec::new())
    }
}

/// `len(v)`.
pub fn len(v: &Value) -> Py<usize> {
    match v {
        Value::Array(a) => Ok(a.len()),
        Value::Object(m) => Ok(m.len()),
        Value::Str(s) => Ok(s.chars().count()),
        _ => Err(Raise),
    }
}

/// `v[i]` for a non-negative int index that is known to be `< len(v)`.
pub fn index(v: &Value, i: usize) -> Py<Cow<'_, Value>> {
    match v {
        Value::Array(a) => a.get(i).map(Cow::Borrowed).ok_or(Raise),
        Value::Str(s) => s
            .chars()
            .nth(i)
            .map(|c| Cow::Owned(Value::Str(c.to_string())))
            .ok_or(Raise),
        // A JSON object has string keys only, so an int key is always a KeyError.
        _ => Err(Raise),
    }
}

/// Whether Python could use the value as a dict key or set member.
pub fn hashable(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Python `==`: numbers (and bools) compare by value, containers element-wise.
pub fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w)))
        }
        _ => match (num(a), num(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
            (Some(x), Some(y)) => x.f64() == y.f64(),
            _ => false,
        },
    }
}

/// `item in container`.
pub fn contains(container: &Value, needle: &Value) -> Py<bool> {
    match container {
        Value::Array(a) => Ok(a.iter().any(|x| eq(x, needle))),
        Value::Object(m) => match needle {
            Value::Str(s) => Ok(m.contains_key(s)),
            v if hashable(v) => Ok(false),
            _ => Err(Raise),
        },
        Value::Str(s) => match needle {
            Value::Str(n) => Ok(s.contains(n.as_str())),
            _ => Err(Raise),
        },
        _ => Err(Raise),
    }
}

/// `str(v)` as an f-string shows it.
pub fn to_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        _ => repr(v),
    }
}

/// Python `repr(v)` (strings quoted), used inside containers.
fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "nan".into(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.into(),
        Value::Float(f) => py_float(*f),
        Value::Str(s) => {
            let q = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::new();
            out.push(q);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == q => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(q);
            out
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", repr(&Value::Str(k.clone())), repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// A Python number: `int` (bools count as ints) or `float`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub fn value(self) -> Value {
        match self {
            Num::Int(i) => Value::Int(i),
            Num::Float(f) => Value::Float(f),
        }
    }

    pub fn truthy(self) -> bool {
        match self {
            Num::Int(i) => i != 0,
            Num::Float(f) => f != 0.0,
        }
    }
}

/// The value as a Python number (`bool` included), `None` for anything else.
pub fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) => Some(Num::Int(*i)),
        Value::Float(f) => Some(Num::Float(*f)),
        Value::Bool(b) => Some(Num::Int(*b as i64)),
        _ => None,
    }
}

/// `isinstance(v, (int, float)) and not isinstance(v, bool)`.
pub fn is_number(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::Float(_))
}

fn operands(a: &Value, b: &Value) -> Py<(Num, Num)> {
    Ok((num(a).ok_or(Raise)?, num(b).ok_or(Raise)?))
}

fn int_or_float(r: Option<i64>, x: i64, y: i64, f: fn(f64, f64) -> f64) -> Num {
    match r {
        Some(i) => Num::Int(i),
        None => Num::Float(f(x as f64, y as f64)),
    }
}

/// `a + b`.
pub fn add_n(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => int_or_float(x.checked_add(y), x, y, |p, q| p + q),
        _ => Num::Float(a.f64() + b.f64()),
    }
}

/// `a - b`.
pub fn sub_n(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => int_or_float(x.checked_sub(y), x, y, |p, q| p - q),
        _ => Num::Float(a.f64() - b.f64()),
    }
}

/// `a * b`.
pub fn mul_n(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => int_or_float(x.checked_mul(y), x, y, |p, q| p * q),
        _ => Num::Float(a.f64() * b.f64()),
    }
}

/// `a / b` (true division; `ZeroDivisionError` for a zero divisor).
pub fn div_n(a: Num, b: Num) -> Py<Num> {
    if !b.truthy() {
        return Err(Raise);
    }
    Ok(Num::Float(a.f64() / b.f64()))
}

pub fn add(a: &Value, b: &Value) -> Py<Value> {
    let (x, y) = operands(a, b)?;
    Ok(add_n(x, y).value())
}

pub fn sub(a: &Value, b: &Value) -> Py<Value> {
    let (x, y) = operands(a, b)?;
    Ok(sub_n(x, y).value())
}

/// `a * b`, including Python's sequence repetition (`[x] * 2`, `"ab" * 3`).
pub fn mul(a: &Value, b: &Value) -> Py<Value> {
    match (a, b) {
        (Value::Array(_) | Value::Str(_), Value::Int(_) | Value::Bool(_)) => repeat(a, b),
        (Value::Int(_) | Value::Bool(_), Value::Array(_) | Value::Str(_)) => repeat(b, a),
        _ => {
            let (x, y) = operands(a, b)?;
            Ok(mul_n(x, y).value())
        }
    }
}

/// Largest repetition result we build; Python would go on until memory runs out.
const MAX_REPEAT: usize = 1 << 20;

fn repeat(seq: &Value, times: &Value) -> Py<Value> {
    let n = match num(times) {
        Some(Num::Int(n)) => usize::try_from(n).unwrap_or(0),
        _ => return Err(Raise),
    };
    match seq {
        Value::Str(s) if s.len().saturating_mul(n) <= MAX_REPEAT => Ok(Value::Str(s.repeat(n))),
        Value::Array(a) if a.len().saturating_mul(n) <= MAX_REPEAT => Ok(Value::Array(
            a.iter().cloned().cycle().take(a.len() * n).collect(),
        )),
        _ => Err(Raise),
    }
}

pub fn div(a: &Value, b: &Value) -> Py<Value> {
    let (x, y) = operands(a, b)?;
    Ok(div_n(x, y)?.value())
}

/// `abs(v)`.
pub fn abs(v: &Value) -> Py<Value> {
    Ok(match num(v).ok_or(Raise)? {
        Num::Int(i) => i
            .checked_abs()
            .map_or(Value::Float((i as f64).abs()), Value::Int),
        Num::Float(f) => Value::Float(f.abs()),
    })
}

/// `a < b` for numbers or strings (anything else raises).
pub fn lt(a: &Value, b: &Value) -> Py<bool> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ => match operands(a, b)? {
            (Num::Int(x), Num::Int(y)) => Ok(x < y),
            (x, y) => Ok(x.f64() < y.f64()),
        },
    }
}

/// `a <= b`.
pub fn le(a: &Value, b: &Value) -> Py<bool> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x <= y),
        _ => match operands(a, b)? {
            (Num::Int(x), Num::Int(y)) => Ok(x <= y),
            (x, y) => Ok(x.f64() <= y.f64()),
        },
    }
}

/// `a > b`.
pub fn gt(a: &Value, b: &Value) -> Py<bool> {
    lt(b, a)
}

/// `math.copysign(x, y)`: always a float.
pub fn copysign(x: &Value, y: &Value) -> Py<Value> {
    let (x, y) = operands(x, y)?;
    Ok(Value::Float(x.f64().copysign(y.f64())))
}

/// `a or b`.
pub fn or<'a>(a: &'a Value, b: &'a Value) -> &'a Value {
    if a.truthy() {
        a
    } else {
        b
    }
}

/// `s.split(sep)` on a string value (`AttributeError` for anything else).
pub fn split<'a>(v: &'a Value, sep: &str) -> Py<Vec<&'a str>> {
    match v {
        Value::Str(s) => Ok(s.split(sep).collect()),
        _ => Err(Raise),
    }
}

/// A Python dict whose keys are arbitrary hashable values (serial numbers as the gateway sends
/// them). Lookups use Python equality; an unhashable key raises.
#[derive(Debug, Clone)]
pub struct Dict<T>(Vec<(Value, T)>);

impl<T> Default for Dict<T> {
    fn default() -> Self {
        Dict(Vec::new())
    }
}

impl<T> Dict<T> {
    pub fn new() -> Self {
        Dict(Vec::new())
    }

    /// Where `key` is, by Python equality (an unhashable key raises).
    pub fn position(&self, key: &Value) -> Py<Option<usize>> {
        if !hashable(key) {
            return Err(Raise);
        }
        Ok(self.0.iter().position(|(k, _)| eq(k, key)))
    }

    /// The value at a position from [`Dict::position`].
    pub fn value_mut(&mut self, i: usize) -> Option<&mut T> {
        self.0.get_mut(i).map(|(_, v)| v)
    }

    pub fn get(&self, key: &Value) -> Py<Option<&T>> {
        let i = self.position(key)?;
        Ok(i.and_then(|i| self.0.get(i)).map(|(_, v)| v))
    }

    pub fn contains(&self, key: &Value) -> Py<bool> {
        Ok(self.position(key)?.is_some())
    }

    /// `d[key] = value` (an existing key keeps its position).
    pub fn insert(&mut self, key: Value, value: T) -> Py<()> {
        match self.position(&key)?.and_then(|i| self.value_mut(i)) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
        Ok(())
    }

    /// `d.setdefault(key, default)`.
    pub fn setdefault(&mut self, key: Value, default: T) -> Py<&mut T> {
        let i = match self.position(&key)? {
            Some(i) => i,
            None => {
                self.0.push((key, default));
                self.0.len() - 1
            }
        };
        self.value_mut(i).ok_or(Raise)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Value, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// `{**a, **b}` / `a.update(b)`: later values win, first positions stay.
pub fn update(into: &mut Map, from: Map) {
    for (k, v) in from {
        into.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_keeps_python_types() {
        assert_eq!(add(&Value::Int(2), &Value::Int(3)), Ok(Value::Int(5)));
        assert_eq!(add(&Value::Bool(true), &Value::Int(3)), Ok(Value::Int(4)));
        assert_eq!(
            mul(&Value::Float(2.1), &Value::Int(0)),
            Ok(Value::Float(0.0))
        );
        assert_eq!(div(&Value::Int(1), &Value::Int(2)), Ok(Value::Float(0.5)));
        assert_eq!(div(&Value::Int(1), &Value::Float(0.0)), Err(Raise));
        assert_eq!(add(&Value::Null, &Value::Int(1)), Err(Raise));
        assert_eq!(
            mul(&Value::Str("ab".into()), &Value::Int(2)),
            Ok("abab".into())
        );
        assert_eq!(
            mul(&Value::Bool(true), &Value::Array(vec![])),
            Ok(Value::Array(vec![]))
        );
        assert_eq!(
            mul(&Value::Str("ab".into()), &Value::Float(2.0)),
            Err(Raise)
        );
        assert_eq!(
            add(&Value::Int(i64::MAX), &Value::Int(1)),
            Ok(Value::Float(i64::MAX as f64 + 1.0))
        );
    }

    #[test]
    fn membership_and_equality_like_python() {
        let list = Value::Array(vec![Value::Int(1), Value::Str("a".into())]);
        assert_eq!(contains(&list, &Value::Float(1.0)), Ok(true));
        assert_eq!(
            contains(
                &Value::Str("Pv_Active_Parallel".into()),
                &"Pv_Active".into()
            ),
            Ok(true)
        );
        assert_eq!(contains(&Value::Null, &"x".into()), Err(Raise));
        assert_eq!(
            contains(&Value::object(), &Value::Array(vec![])),
            Err(Raise)
        );
        assert!(eq(&Value::Bool(true), &Value::Int(1)));
    }

    #[test]
    fn str_like_an_f_string() {
        assert_eq!(to_str(&Value::Null), "None");
        assert_eq!(to_str(&Value::Float(f64::INFINITY)), "inf");
        assert_eq!(to_str(&Value::Float(1.0)), "1.0");
        assert_eq!(
            to_str(&Value::Array(vec![
                Value::Str("a".into()),
                Value::Bool(false)
            ])),
            "['a', False]"
        );
    }
}
