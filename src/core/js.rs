//! JavaScript's value semantics where the adapters must reproduce them exactly: `ToNumber`/`ToString` on
//! JSON values, relational comparison (`<`, `>`), strict equality (`===`), a stable sort that never panics,
//! and `Array.prototype.slice` bounds. Used by the state filter and by stream queries.

use serde_json::Value;
use std::cmp::Ordering;

/// JS `ToNumber` on a string (StringToNumber).
pub fn js_string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let radix = |p: &str, r: u32| -> f64 {
        if p.is_empty() {
            return f64::NAN;
        }
        let mut acc = 0f64;
        for c in p.chars() {
            match c.to_digit(r) {
                Some(d) => acc = acc * r as f64 + d as f64,
                None => return f64::NAN,
            }
        }
        acc
    };
    let lower = t.get(..2).map(|p| p.to_ascii_lowercase());
    match lower.as_deref() {
        Some("0x") => return radix(&t[2..], 16),
        Some("0o") => return radix(&t[2..], 8),
        Some("0b") => return radix(&t[2..], 2),
        _ => {}
    }
    // Rust accepts "inf"/"nan"/"infinity" spellings JS does not; JS decimal literals only use these.
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// JS `Number.prototype.toString` for the values JSON can hold (good enough for comparisons).
fn js_number_to_string(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// JS `ToPrimitive` + `ToString` for arrays/objects (what `<` does with them).
fn js_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number_to_string(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|e| match e {
                Value::Null => String::new(),
                other => js_to_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}

enum Prim {
    Num(f64),
    Str(String),
}

fn to_prim(v: &Value) -> Prim {
    match v {
        Value::Null => Prim::Num(0.0),
        Value::Bool(b) => Prim::Num(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => Prim::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Prim::Str(s.clone()),
        other => Prim::Str(js_to_string(other)),
    }
}
/// JS abstract relational comparison of `field` with the string `rhs`; `None` means "false for all of <,>,<=,>=".
pub fn js_compare(field: Option<&Value>, rhs: &str) -> Option<Ordering> {
    let field = field?; // undefined -> NaN
    match to_prim(field) {
        Prim::Str(s) => Some(s.encode_utf16().cmp(rhs.encode_utf16())),
        Prim::Num(a) => a.partial_cmp(&js_string_to_number(rhs)),
    }
}
/// A value prepared once for repeated JS relational comparisons (sorting).
#[derive(Debug, Clone)]
pub enum SortKey {
    Undefined,
    Num(f64),
    Str(Vec<u16>),
}

impl SortKey {
    pub fn of(v: Option<&Value>) -> SortKey {
        match v {
            None => SortKey::Undefined,
            Some(v) => match to_prim(v) {
                Prim::Num(n) => SortKey::Num(n),
                Prim::Str(s) => SortKey::Str(s.encode_utf16().collect()),
            },
        }
    }

    fn num(&self) -> f64 {
        match self {
            SortKey::Undefined => f64::NAN,
            SortKey::Num(n) => *n,
            SortKey::Str(s) => js_string_to_number(&String::from_utf16_lossy(s)),
        }
    }

    /// JS `a < b`.
    pub fn less(&self, other: &SortKey) -> bool {
        match (self, other) {
            (SortKey::Undefined, _) | (_, SortKey::Undefined) => false,
            (SortKey::Str(a), SortKey::Str(b)) => a < b,
            (a, b) => a.num() < b.num(),
        }
    }
}

/// JS strict equality (`===`) of two parsed JSON values: objects and arrays are never equal
/// (they are distinct references once parsed).
pub fn js_strict_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Null), Some(Value::Null)) => true,
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x == y,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(Value::String(x)), Some(Value::String(y))) => x == y,
        _ => false,
    }
}

/// Stable merge sort of indices `0..n` that never panics on an inconsistent comparator (unlike
/// `slice::sort_by`) and gives the same order as V8's stable sort for consistent ones. Sorting
/// indices keeps the items themselves in place (no clones).
pub fn stable_sort_indices<F: FnMut(usize, usize) -> Ordering>(n: usize, mut cmp: F) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut buf: Vec<usize> = vec![0; n];
    let mut width = 1;
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j, mut k) = (start, mid, start);
            while i < mid && j < end {
                if cmp(idx[j], idx[i]) == Ordering::Less {
                    buf[k] = idx[j];
                    j += 1;
                } else {
                    buf[k] = idx[i];
                    i += 1;
                }
                k += 1;
            }
            buf[k..k + (mid - i)].copy_from_slice(&idx[i..mid]);
            k += mid - i;
            buf[k..k + (end - j)].copy_from_slice(&idx[j..end]);
            start = end;
        }
        std::mem::swap(&mut idx, &mut buf);
        width *= 2;
    }
    idx
}

/// `Array.prototype.slice(start, end)` index arithmetic.
pub fn js_slice_bounds(len: usize, start: f64, end: Option<f64>) -> (usize, usize) {
    let len_f = len as f64;
    let norm = |x: f64| {
        let x = if x.is_nan() { 0.0 } else { x.trunc() };
        if x < 0.0 {
            (len_f + x).max(0.0)
        } else {
            x.min(len_f)
        }
    };
    let s = norm(start) as usize;
    let e = end.map(norm).unwrap_or(len_f) as usize;
    (s, e.max(s))
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn js_to_number() {
        assert_eq!(js_string_to_number(" 42 "), 42.0);
        assert_eq!(js_string_to_number(""), 0.0);
        assert!(js_string_to_number("12px").is_nan());
        assert_eq!(js_string_to_number("0b101"), 5.0);
        assert_eq!(js_string_to_number(".5"), 0.5);
    }

    #[test]
    fn less_and_strict_eq() {
        let less = |a: Option<&Value>, b: Option<&Value>| SortKey::of(a).less(&SortKey::of(b));
        assert!(less(Some(&json!(1)), Some(&json!(2))));
        assert!(less(Some(&json!("10")), Some(&json!("9"))));
        assert!(less(Some(&json!(9)), Some(&json!("10"))));
        assert!(!less(None, Some(&json!(1))));
        assert!(js_strict_eq(Some(&json!(1)), Some(&json!(1.0))));
        assert!(!js_strict_eq(Some(&json!({})), Some(&json!({}))));
        assert!(!js_strict_eq(Some(&json!("1")), Some(&json!(1))));
        assert!(js_strict_eq(None, None));
    }

    #[test]
    fn sort_is_stable_and_total_safe() {
        let v = [(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (0, 'e')];
        let order = stable_sort_indices(v.len(), |a, b| v[a].0.cmp(&v[b].0));
        let sorted: Vec<_> = order.iter().map(|&i| v[i]).collect();
        assert_eq!(sorted, vec![(0, 'e'), (1, 'b'), (1, 'd'), (2, 'a'), (2, 'c')]);
        let w = [f64::NAN, 1.0, f64::NAN, 0.0, 3.0, -1.0, f64::NAN];
        let order = stable_sort_indices(w.len(), |a, b| w[a].partial_cmp(&w[b]).unwrap_or(Ordering::Equal)); // must not panic
        assert_eq!(order.len(), w.len());
        for n in 0..40 {
            let data: Vec<u32> = (0..n).map(|i| (i * 7919) % 13).collect();
            let order = stable_sort_indices(data.len(), |a, b| data[a].cmp(&data[b]));
            let mut expect: Vec<usize> = (0..data.len()).collect();
            expect.sort_by_key(|&i| data[i]);
            assert_eq!(order, expect);
        }
    }

    #[test]
    fn slice_like_js() {
        assert_eq!(js_slice_bounds(10, 2.0, Some(5.0)), (2, 5));
        assert_eq!(js_slice_bounds(10, -3.0, None), (7, 10));
        assert_eq!(js_slice_bounds(10, 0.0, Some(-2.0)), (0, 8));
        assert_eq!(js_slice_bounds(3, 5.0, None), (3, 3));
    }
}
