//! A restricted unpickler for the `data.pkl` of a PyTorch checkpoint: it builds a tree of plain
//! values and never runs anything. Classes stay names (`Global`), calls stay records
//! (`Object`), except the few that torch's own loader needs to rebuild tensors and dicts
//! (`_rebuild_tensor_v2`, `_rebuild_parameter`, `OrderedDict`, …), which become [`Node::Tensor`]
//! and [`Node::Dict`]. Objects live in an arena and the memo refers to them by id, so a dict
//! memoised before it is filled is shared, as in Python.
//!
//! Hostile input is an error, never a panic or a huge allocation: every length is checked
//! against the bytes left, and the number of objects is capped.

use std::collections::HashMap;

/// The index of a node in the arena.
pub(crate) type NodeId = usize;

/// At most this many objects in one pickle (a checkpoint's has a few hundred thousand).
const MAX_NODES: usize = 5_000_000;

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    /// The storage class name (`FloatStorage`, `HalfStorage`, …).
    pub class: String,
    /// Its record name in the archive (`<root>/data/<key>`).
    pub key: String,
    /// Number of elements.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    /// The storage it views.
    pub storage: StorageRef,
    /// Offset into the storage, in elements.
    pub offset: u64,
    /// Shape.
    pub shape: Vec<u64>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
}

/// One unpickled value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Raw bytes (only their length is kept).
    Bytes(usize),
    /// A class or function named by `GLOBAL`.
    Global {
        module: String,
        name: String,
    },
    Tuple(Vec<NodeId>),
    List(Vec<NodeId>),
    Dict(Vec<(NodeId, NodeId)>),
    /// Any other object: what made it, with what, and the state and items set on it since.
    Object {
        class: NodeId,
        args: NodeId,
        state: Option<NodeId>,
        items: Vec<(NodeId, NodeId)>,
    },
    /// The result of a persistent load that is not a storage.
    Persistent(NodeId),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PickleError {
    /// The data ended inside an instruction.
    #[error("the pickle ends early (at byte {0})")]
    Truncated(usize),
    /// An opcode this reader does not take (protocol 0/1 text opcodes, extensions).
    #[error("unsupported pickle opcode 0x{0:02x} at byte {1}")]
    Opcode(u8, usize),
    /// The instructions do not make sense (an empty stack, a missing mark, a bad memo id, …).
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed {
        /// Where.
        at: usize,
        /// What.
        what: String,
    },
    /// More objects than any checkpoint has.
    #[error("the pickle holds more than {MAX_NODES} objects")]
    TooLarge,
}

/// The unpickled tree.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    nodes: Vec<Node>,
}

impl Arena {
    /// The node `id` (a `None` for an id out of range, which the reader never makes).
    pub fn get(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&Node::None)
    }

    fn add(&mut self, node: Node) -> Result<NodeId, PickleError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(PickleError::TooLarge);
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// The string held by `id`, if it is one.
    pub fn str(&self, id: NodeId) -> Option<&str> {
        match self.get(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    fn int(&self, id: NodeId) -> Option<i64> {
        match self.get(id) {
            Node::Int(v) => Some(*v),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    fn items(&self, id: NodeId) -> Option<&[NodeId]> {
        match self.get(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    fn global(&self, id: NodeId) -> Option<(&str, &str)> {
        match self.get(id) {
            Node::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    fn u64s(&self, id: NodeId) -> Option<Vec<u64>> {
        self.items(id)?
            .iter()
            .map(|&i| self.int(i).and_then(|v| u64::try_from(v).ok()))
            .collect()
    }
}

/// Reads one pickle from `data`; returns the arena and the id of the value it returned.
pub(crate) fn unpickle(data: &[u8]) -> Result<(Arena, NodeId), PickleError> {
    let mut machine = Machine {
        data,
        pos: 0,
        arena: Arena::default(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = machine.run()?;
    Ok((machine.arena, root))
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Arena,
    stack: Vec<NodeId>,
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
}

impl Machine<'_> {
    fn malformed(&self, what: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            at: self.pos,
            what: what.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or(PickleError::Truncated(self.pos))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self, bytes: usize) -> Result<usize, PickleError> {
        let raw = match bytes {
            1 => u64::from(self.u8()?),
            4 => u64::from(u32::from_le_bytes(self.le::<4>()?)),
            _ => u64::from_le_bytes(self.le::<8>()?),
        };
        usize::try_from(raw).map_err(|_| PickleError::Truncated(self.pos))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.pos))?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: usize) -> Result<String, PickleError> {
        let bytes = self.take(n)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn push(&mut self, node: Node) -> Result<(), PickleError> {
        let id = self.arena.add(node)?;
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> Result<NodeId, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.malformed("pop from an empty stack"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("empty stack"))
    }

    fn top(&self) -> Result<NodeId, PickleError> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("empty stack"))
    }

    fn pop_mark(&mut self) -> Result<Vec<NodeId>, PickleError> {
        let mark = self.marks.pop().ok_or_else(|| self.malformed("no mark"))?;
        if mark > self.stack.len() {
            return Err(self.malformed("mark above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn run(&mut self) -> Result<NodeId, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.le::<8>()?; // FRAME
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.le::<4>()?);
                    self.push(Node::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le::<2>()?);
                    self.push(Node::Int(i64::from(v)))?;
                }
                0x8a | 0x8b => {
                    let n = self.len(if op == 0x8a { 1 } else { 4 })?;
                    let bytes = self.take(n)?;
                    let value = long_from_le(bytes).ok_or_else(|| PickleError::Malformed {
                        at,
                        what: format!("integer of {n} bytes"),
                    })?;
                    self.push(Node::Int(value))?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le::<8>()?);
                    self.push(Node::Float(v))?;
                }
                b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                    let n = match op {
                        0x8c | b'U' => self.len(1)?,
                        0x8d => self.len(8)?,
                        _ => self.len(4)?,
                    };
                    let s = self.text(n)?;
                    self.push(Node::Str(s))?;
                }
                b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'C' => self.len(1)?,
                        0x8e => self.len(8)?,
                        _ => self.len(4)?,
                    };
                    self.take(n)?;
                    self.push(Node::Bytes(n))?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Node::Global { module, name })?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.arena.str(module), self.arena.str(name))
                    else {
                        return Err(self.malformed("STACK_GLOBAL of non-strings"));
                    };
                    let node = Node::Global {
                        module: module.to_string(),
                        name: name.to_string(),
                    };
                    self.push(node)?;
                }
                b'}' => self.push(Node::Dict(Vec::new()))?,
                b']' => self.push(Node::List(Vec::new()))?,
                b')' => self.push(Node::Tuple(Vec::new()))?,
                0x8f => self.push(Node::List(Vec::new()))?, // EMPTY_SET
                b't' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items))?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.push(Node::Dict(pairs))?;
                }
                b'a' => {
                    let value = self.pop()?;
                    self.extend(vec![value])?;
                }
                b'e' | 0x90 => {
                    let values = self.pop_mark()?;
                    self.extend(values)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![(key, value)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.set_items(pairs)?;
                }
                b'q' | b'r' | 0x94 => {
                    let key = match op {
                        b'q' => u64::from(self.u8()?),
                        b'r' => u64::from(u32::from_le_bytes(self.le::<4>()?)),
                        _ => self.memo.len() as u64,
                    };
                    let top = self.top()?;
                    self.memo.insert(key, top);
                }
                b'h' | b'j' => {
                    let key = if op == b'h' {
                        u64::from(self.u8()?)
                    } else {
                        u64::from(u32::from_le_bytes(self.le::<4>()?))
                    };
                    let id = *self
                        .memo
                        .get(&key)
                        .ok_or_else(|| self.malformed(format!("memo {key} unset")))?;
                    self.stack.push(id);
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let node = self.persistent(pid);
                    self.push(node)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let node = self.call(callable, args)?;
                    self.push(node)?;
                }
                0x81 | 0x92 => {
                    if op == 0x92 {
                        self.pop()?; // keyword arguments
                    }
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let node = self.call(class, args)?;
                    self.push(node)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    if let Some(Node::Object { state: slot, .. }) = self.arena.nodes.get_mut(target)
                    {
                        *slot = Some(state);
                    }
                }
                _ => return Err(PickleError::Opcode(op, at)),
            }
        }
    }

    fn pairs(&self, items: Vec<NodeId>) -> Result<Vec<(NodeId, NodeId)>, PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("an odd number of dict items"));
        }
        Ok(items.chunks_exact(2).map(|p| (p[0], p[1])).collect())
    }

    fn extend(&mut self, values: Vec<NodeId>) -> Result<(), PickleError> {
        let target = self.top()?;
        match self.arena.nodes.get_mut(target) {
            Some(Node::List(list) | Node::Tuple(list)) => list.extend(values),
            Some(Node::Object { items, .. }) => {
                items.extend(values.into_iter().map(|v| (v, v)));
            }
            _ => return Err(self.malformed("append to a non-list")),
        }
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<(NodeId, NodeId)>) -> Result<(), PickleError> {
        let target = self.top()?;
        match self.arena.nodes.get_mut(target) {
            Some(Node::Dict(dict)) => dict.extend(pairs),
            Some(Node::Object { items, .. }) => items.extend(pairs),
            _ => return Err(self.malformed("set item on a non-dict")),
        }
        Ok(())
    }

    /// `('storage', torch.FloatStorage, key, location, numel)` becomes a storage; anything else
    /// stays opaque.
    fn persistent(&self, pid: NodeId) -> Node {
        let a = &self.arena;
        let storage = a.items(pid).and_then(|t| {
            let [tag, class, key, _location, numel] = t else {
                return None;
            };
            (a.str(*tag)? == "storage").then_some(())?;
            Some(StorageRef {
                class: a.global(*class)?.1.to_string(),
                key: a.str(*key)?.to_string(),
                numel: u64::try_from(a.int(*numel)?).ok()?,
            })
        });
        storage.map_or(Node::Persistent(pid), Node::Storage)
    }

    /// A call: the ones torch's loader needs are done; others are recorded.
    fn call(&mut self, callable: NodeId, args: NodeId) -> Result<Node, PickleError> {
        let (module, name) = self
            .arena
            .global(callable)
            .map(|(m, n)| (m.to_string(), n.to_string()))
            .unwrap_or_default();
        let args_list = self.arena.items(args).map(<[NodeId]>::to_vec);
        let node = match (module.as_str(), name.as_str(), args_list) {
            ("collections", "OrderedDict" | "defaultdict", _) | ("builtins", "dict", _) => {
                Node::Dict(Vec::new())
            }
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor", Some(a)) => {
                self.rebuild_tensor(&a)?
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state", Some(a))
                if !a.is_empty() =>
            {
                self.arena.get(a[0]).clone()
            }
            ("torch._tensor", "_rebuild_from_type_v2", Some(a)) if a.len() >= 3 => {
                self.call(a[0], a[2])?
            }
            _ => Node::Object {
                class: callable,
                args,
                state: None,
                items: Vec::new(),
            },
        };
        Ok(node)
    }

    fn rebuild_tensor(&self, args: &[NodeId]) -> Result<Node, PickleError> {
        let a = &self.arena;
        let bad = |what: &str| self.malformed(format!("tensor rebuild: {what}"));
        let [storage, offset, shape, stride, ..] = args else {
            return Err(bad("too few arguments"));
        };
        let Node::Storage(storage) = a.get(*storage) else {
            return Err(bad("no storage"));
        };
        let offset = a
            .int(*offset)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| bad("offset"))?;
        let shape = a.u64s(*shape).ok_or_else(|| bad("shape"))?;
        let stride = a.u64s(*stride).ok_or_else(|| bad("stride"))?;
        if shape.len() != stride.len() {
            return Err(bad("shape and stride of different lengths"));
        }
        Ok(Node::Tensor(TensorRef {
            storage: storage.clone(),
            offset,
            shape,
            stride,
        }))
    }
}

/// A little-endian two's-complement integer of up to 8 bytes.
fn long_from_le(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() {
        return Some(0);
    }
    if bytes.len() > 8 {
        return None;
    }
    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
        [0xffu8; 8]
    } else {
        [0u8; 8]
    };
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(i64::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{'a': [1, 2], 'b': 'x'}` pickled by Python 3 (protocol 2).
    const SMALL: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02eX\x01\x00\x00\x00bq\x03X\x01\x00\x00\x00xq\x04u.";

    #[test]
    fn reads_a_small_dict() {
        let (arena, root) = unpickle(SMALL).expect("reads");
        let Node::Dict(items) = arena.get(root) else {
            panic!("not a dict: {:?}", arena.get(root));
        };
        assert_eq!(items.len(), 2);
        assert_eq!(arena.str(items[0].0), Some("a"));
        assert_eq!(arena.items(items[0].1).map(<[_]>::len), Some(2));
        assert_eq!(arena.str(items[1].1), Some("x"));
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        for end in 0..SMALL.len() - 1 {
            assert!(unpickle(&SMALL[..end]).is_err(), "prefix of {end} bytes");
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut bytes = SMALL.to_vec();
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng % bytes.len() as u64) as usize;
                bytes[i] = (rng >> 24) as u8;
            }
            let _ = unpickle(&bytes);
        }
        // A string claiming 4 GB: an error, not an allocation.
        assert!(unpickle(b"\x80\x02X\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn long_integers_keep_their_sign() {
        assert_eq!(long_from_le(&[0xff]), Some(-1));
        assert_eq!(long_from_le(&[0x00, 0x01]), Some(256));
        assert_eq!(long_from_le(&[]), Some(0));
    }
}
