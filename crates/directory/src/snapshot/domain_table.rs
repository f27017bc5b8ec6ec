//! A compact, read-only hash table of domain names.
//!
//! At a million domains a `HashMap<String, Entry>` costs a heap allocation, a 24-byte `String`
//! and padding per domain, plus the table itself: well over 100 MB. Here every name lives in one
//! shared buffer, each domain costs 4 bytes of end offset and 4 bytes of packed entry, and the
//! open-addressing index holds 4-byte domain numbers: about 30 bytes per domain in all, names
//! included.

use std::hash::BuildHasher;
use std::hash::RandomState;

use crate::error::DirectoryError;

/// Strings stored back to back in one buffer, addressed by number.
#[derive(Debug, Default)]
pub(super) struct StrArena {
    bytes: String,
    /// `ends[i]` is where string `i` ends; it starts where `i - 1` ends.
    ends: Vec<u32>,
}

impl StrArena {
    pub(super) fn with_capacity(count: usize, bytes: usize) -> Self {
        Self {
            bytes: String::with_capacity(bytes),
            ends: Vec::with_capacity(count),
        }
    }

    /// Appends `s` and returns its number.
    pub(super) fn push(&mut self, s: &str) -> Result<u32, DirectoryError> {
        let index = u32::try_from(self.ends.len())
            .ok()
            .filter(|&i| i <= MAX_INDEX)
            .ok_or(DirectoryError::TooLarge {
                what: "domains",
                max: u64::from(MAX_INDEX),
            })?;
        let end =
            u32::try_from(self.bytes.len() + s.len()).map_err(|_| DirectoryError::TooLarge {
                what: "bytes of domain names",
                max: u64::from(u32::MAX),
            })?;
        self.bytes.push_str(s);
        self.ends.push(end);
        Ok(index)
    }

    pub(super) fn get(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * 4
    }
}

/// The highest domain or profile number an [`Entry`] can carry (30 bits).
pub(super) const MAX_INDEX: u32 = (1 << 30) - 1;
const ALIAS_BIT: u32 = 1 << 31;
const SUSPENDED_BIT: u32 = 1 << 30;
/// Marks a free slot in the index.
const EMPTY: u32 = u32::MAX;

/// One domain packed into 32 bits: alias flag, suspended flag, and a 30-bit number that is the
/// profile number of a primary or the domain number of an alias's primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry(u32);

impl Entry {
    pub(super) fn primary(profile: u32, suspended: bool) -> Self {
        debug_assert!(profile <= MAX_INDEX);
        Self(profile | if suspended { SUSPENDED_BIT } else { 0 })
    }

    pub(super) fn alias(target: u32, suspended: bool) -> Self {
        debug_assert!(target <= MAX_INDEX);
        Self(ALIAS_BIT | target | if suspended { SUSPENDED_BIT } else { 0 })
    }

    pub(super) fn is_alias(self) -> bool {
        self.0 & ALIAS_BIT != 0
    }

    pub(super) fn is_suspended(self) -> bool {
        self.0 & SUSPENDED_BIT != 0
    }

    /// Profile number (primary) or primary's domain number (alias).
    pub(super) fn index(self) -> u32 {
        self.0 & MAX_INDEX
    }
}

/// Domain names with their entries, found by name in O(1).
#[derive(Debug)]
pub(super) struct DomainTable {
    names: StrArena,
    entries: Vec<Entry>,
    /// Open addressing with linear probing; each slot is a domain number or [`EMPTY`].
    slots: Box<[u32]>,
    /// Keyed per process, so crafted names cannot force collisions.
    hasher: RandomState,
}

/// A name that was added twice.
#[derive(Debug)]
pub(super) struct Duplicate(pub(super) String);

impl DomainTable {
    /// Indexes `names`; `entries[i]` belongs to name `i`.
    pub(super) fn build(mut names: StrArena, mut entries: Vec<Entry>) -> Result<Self, Duplicate> {
        debug_assert_eq!(names.len(), entries.len());
        names.shrink_to_fit();
        entries.shrink_to_fit();
        // A load factor of at most 0.7 keeps linear probes short.
        let capacity = (names.len() * 10 / 7 + 1).next_power_of_two().max(8);
        let mut table = Self {
            names,
            entries,
            slots: vec![EMPTY; capacity].into_boxed_slice(),
            hasher: RandomState::new(),
        };
        let mask = capacity - 1;
        for index in 0..table.names.len() as u32 {
            let name = table.names.get(index);
            let mut slot = table.hasher.hash_one(name) as usize & mask;
            loop {
                match table.slots[slot] {
                    EMPTY => {
                        table.slots[slot] = index;
                        break;
                    }
                    other if table.names.get(other) == name => {
                        return Err(Duplicate(name.to_owned()));
                    }
                    _ => slot = (slot + 1) & mask,
                }
            }
        }
        Ok(table)
    }

    /// The number of the domain called `name`.
    pub(super) fn find(&self, name: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut slot = self.hasher.hash_one(name) as usize & mask;
        loop {
            match self.slots[slot] {
                EMPTY => return None,
                index if self.names.get(index) == name => return Some(index),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    pub(super) fn name(&self, index: u32) -> &str {
        self.names.get(index)
    }

    pub(super) fn entry(&self, index: u32) -> Entry {
        self.entries[index as usize]
    }

    pub(super) fn set_entry(&mut self, index: u32, entry: Entry) {
        self.entries[index as usize] = entry;
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.names.heap_bytes() + self.entries.capacity() * 4 + self.slots.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_and_nothing_else() {
        let mut names = StrArena::default();
        let mut entries = Vec::new();
        for i in 0..1000u32 {
            names.push(&format!("d{i}.example")).unwrap();
            entries.push(Entry::primary(i % 7, i % 2 == 0));
        }
        let table = DomainTable::build(names, entries).unwrap();
        for i in 0..1000u32 {
            let index = table.find(&format!("d{i}.example")).unwrap();
            assert_eq!(index, i);
            assert_eq!(table.name(index), format!("d{i}.example"));
            assert_eq!(table.entry(index).index(), i % 7);
            assert_eq!(table.entry(index).is_suspended(), i % 2 == 0);
            assert!(!table.entry(index).is_alias());
        }
        assert_eq!(table.find("d1000.example"), None);
        assert_eq!(table.find(""), None);
    }

    #[test]
    fn empty_table_finds_nothing() {
        let table = DomainTable::build(StrArena::default(), Vec::new()).unwrap();
        assert_eq!(table.find("a.example"), None);
    }

    #[test]
    fn duplicates_are_reported() {
        let mut names = StrArena::default();
        for name in ["a.example", "b.example", "a.example"] {
            names.push(name).unwrap();
        }
        let entries = vec![Entry::primary(0, false); 3];
        match DomainTable::build(names, entries) {
            Err(Duplicate(name)) => assert_eq!(name, "a.example"),
            Ok(_) => panic!("duplicate not found"),
        }
    }

    #[test]
    fn entries_pack_flags_and_index() {
        let e = Entry::alias(MAX_INDEX, true);
        assert!(e.is_alias() && e.is_suspended());
        assert_eq!(e.index(), MAX_INDEX);
        let e = Entry::primary(5, false);
        assert!(!e.is_alias() && !e.is_suspended());
        assert_eq!(e.index(), 5);
    }
}
