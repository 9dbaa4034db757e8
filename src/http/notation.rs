//! A compact notation for JSON Schemas, so the route table's response shapes stay readable.
//!
//! ```text
//! str  num  int  bool  null  any  object  array     the JSON types (`any`: no constraint)
//! int(0,100)                                        an integer in a range (also num(…))
//! 'a'|'b'                                           string literals (an enum)
//! [T]                                               an array of T
//! {key: T, opt?: T, *: T}                           an object: required and optional keys;
//!                                                   `*` types the keys not listed
//! A|B                                               either (`T|null`: may be null)
//! @Name                                             the component schema `Name`
//! ```
//! Keys are `[A-Za-z0-9_.-]` words or `"quoted"`; whitespace is free. [`parse`] panics on bad
//! notation (the texts are constants: a unit test parses every one).

use crate::json::{Map, Value};

/// The JSON Schema of `text` (panics with the position on a syntax error).
pub fn parse(text: &str) -> Value {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    let v = p.union();
    p.ws();
    if p.i != p.s.len() {
        p.fail("end of text");
    }
    v
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn fail(&self, want: &str) -> ! {
        panic!(
            "schema notation: {want} expected at {} in {:?}",
            self.i, self.text
        )
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) {
        if !self.eat(c) {
            self.fail(&format!("'{}'", c as char));
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
        {
            self.i += 1;
        }
        if start == self.i {
            self.fail("a name");
        }
        self.text[start..self.i].to_string()
    }

    fn quoted(&mut self, q: u8) -> String {
        self.expect(q);
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&c| c != q) {
            self.i += 1;
        }
        let out = self.text[start..self.i].to_string();
        self.expect(q);
        out
    }

    fn union(&mut self) -> Value {
        let mut parts = vec![self.atom()];
        while self.eat(b'|') {
            parts.push(self.atom());
        }
        if parts.len() == 1 {
            return parts.remove(0);
        }
        // Plain types merge into one `type` list; literals into one `enum`; else `anyOf`.
        let plain = |v: &Value| {
            v.as_object().is_some_and(|m| {
                m.len() == 1 && m.get("type").is_some_and(|t| t.as_str().is_some())
            })
        };
        let literal = |v: &Value| {
            v.as_object()
                .is_some_and(|m| m.len() == 1 && m.contains_key("const"))
        };
        if parts.iter().all(plain) {
            let types: Vec<Value> = parts
                .iter()
                .filter_map(|p| p.get("type").cloned())
                .collect();
            return Map::new().with("type", types).into();
        }
        if parts.iter().all(|p| {
            literal(p) || p.get("type").and_then(Value::as_str) == Some("null") && plain(p)
        }) {
            let mut values: Vec<Value> = Vec::new();
            for p in &parts {
                values.push(p.get("const").cloned().unwrap_or(Value::Null));
            }
            return Map::new().with("enum", values).into();
        }
        Map::new().with("anyOf", parts).into()
    }

    fn atom(&mut self) -> Value {
        self.ws();
        match self.s.get(self.i) {
            Some(b'[') => {
                self.i += 1;
                let items = self.union();
                self.expect(b']');
                Map::new().with("type", "array").with("items", items).into()
            }
            Some(b'{') => self.object(),
            Some(b'@') => {
                self.i += 1;
                let name = self.word();
                Map::new()
                    .with("$ref", format!("#/components/schemas/{name}"))
                    .into()
            }
            Some(b'\'') => Map::new().with("const", self.quoted(b'\'')).into(),
            _ => {
                let name = self.word();
                let ty = match name.as_str() {
                    "str" => "string",
                    "num" => "number",
                    "int" => "integer",
                    "bool" => "boolean",
                    "null" => "null",
                    "object" => "object",
                    "array" => "array",
                    "any" => return Value::object(),
                    _ => self.fail("a type"),
                };
                let mut m = Map::new().with("type", ty);
                if (ty == "integer" || ty == "number") && self.eat(b'(') {
                    let lo = self.word();
                    self.expect(b',');
                    let hi = self.word();
                    self.expect(b')');
                    let n = |s: &str| match s.parse::<i64>() {
                        Ok(i) => Value::Int(i),
                        Err(_) => Value::Float(s.parse().unwrap_or(0.0)),
                    };
                    m.insert("minimum", n(&lo));
                    m.insert("maximum", n(&hi));
                }
                m.into()
            }
        }
    }

    fn object(&mut self) -> Value {
        self.expect(b'{');
        let mut props = Map::new();
        let mut required: Vec<Value> = Vec::new();
        let mut rest = None;
        while !self.eat(b'}') {
            self.ws();
            let key = match self.s.get(self.i) {
                Some(b'"') => self.quoted(b'"'),
                Some(b'*') => {
                    self.i += 1;
                    self.expect(b':');
                    rest = Some(self.union());
                    if !self.eat(b',') {
                        self.expect(b'}');
                        break;
                    }
                    continue;
                }
                _ => self.word(),
            };
            let optional = self.eat(b'?');
            self.expect(b':');
            if !optional {
                required.push(Value::from(key.as_str()));
            }
            props.insert(key, self.union());
            if !self.eat(b',') {
                self.expect(b'}');
                break;
            }
        }
        let mut m = Map::new().with("type", "object");
        if !props.is_empty() {
            m.insert("properties", props);
        }
        if !required.is_empty() {
            m.insert("required", required);
        }
        if let Some(r) = rest {
            m.insert("additionalProperties", r);
        }
        m.into()
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn notation() {
        assert_eq!(parse("str").to_py(), r#"{"type": "string"}"#);
        assert_eq!(parse("num|null").to_py(), r#"{"type": ["number", "null"]}"#);
        assert_eq!(parse("'a'|'b'").to_py(), r#"{"enum": ["a", "b"]}"#);
        assert_eq!(
            parse("{a: int(0,100), b?: [str], *: any}").to_py(),
            r#"{"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 100}, "b": {"type": "array", "items": {"type": "string"}}}, "required": ["a"], "additionalProperties": {}}"#
        );
        assert_eq!(
            parse("@Meter|null").to_py(),
            r##"{"anyOf": [{"$ref": "#/components/schemas/Meter"}, {"type": "null"}]}"##
        );
        assert_eq!(
            parse(r#"{"a b": bool,}"#).get("required").unwrap().to_py(),
            r#"["a b"]"#
        );
    }

    #[test]
    #[should_panic(expected = "a type")]
    fn bad_notation_panics() {
        parse("{a: strng}");
    }
}
