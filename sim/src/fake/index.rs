//! An ordered set that also answers "how many keys are below this one" and "which key is
//! n-th" in logarithmic time: the index a page of a large table is served from, so that a
//! page's cost does not depend on the table's size. Keys live in sorted chunks of bounded
//! size with the count of keys before each chunk kept beside them. It owns ordering and
//! counting only; it must not know records.

/// Largest chunk before it is split in two.
const MAX_CHUNK: usize = 1024;

/// A sorted set of keys with rank and position queries.
#[derive(Debug, Clone)]
pub struct RankIndex<K> {
    chunks: Vec<Vec<K>>,
    /// `before[i]`: keys in the chunks before chunk `i`.
    before: Vec<usize>,
    len: usize,
}

impl<K: Ord + Copy> Default for RankIndex<K> {
    fn default() -> Self {
        RankIndex {
            chunks: Vec::new(),
            before: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Ord + Copy> RankIndex<K> {
    /// An index holding `keys`, which must be sorted and free of duplicates.
    pub fn from_sorted(keys: Vec<K>) -> RankIndex<K> {
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let len = keys.len();
        let chunks: Vec<Vec<K>> = keys.chunks(MAX_CHUNK / 2).map(<[K]>::to_vec).collect();
        let mut index = RankIndex {
            before: vec![0; chunks.len()],
            chunks,
            len,
        };
        index.recount(0);
        index
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the index holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk that holds, or would hold, `key`.
    fn chunk_of(&self, key: &K) -> usize {
        let i = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|last| last < key));
        i.min(self.chunks.len().saturating_sub(1))
    }

    fn recount(&mut self, from: usize) {
        let mut n = if from == 0 {
            0
        } else {
            self.before[from - 1] + self.chunks[from - 1].len()
        };
        for i in from..self.chunks.len() {
            self.before[i] = n;
            n += self.chunks[i].len();
        }
    }

    /// Adds `key`; false when it was already there.
    pub fn insert(&mut self, key: K) -> bool {
        if self.chunks.is_empty() {
            self.chunks.push(vec![key]);
            self.before.push(0);
            self.len = 1;
            return true;
        }
        let c = self.chunk_of(&key);
        let chunk = &mut self.chunks[c];
        let at = match chunk.binary_search(&key) {
            Ok(_) => return false,
            Err(at) => at,
        };
        chunk.insert(at, key);
        self.len += 1;
        if chunk.len() > MAX_CHUNK {
            let tail = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(c + 1, tail);
            self.before.insert(c + 1, 0);
        }
        self.recount(c + 1);
        true
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&mut self, key: &K) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let c = self.chunk_of(key);
        let chunk = &mut self.chunks[c];
        let Ok(at) = chunk.binary_search(key) else {
            return false;
        };
        chunk.remove(at);
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(c);
            self.before.remove(c);
            if c < self.chunks.len() {
                self.recount(c);
            }
        } else {
            self.recount(c + 1);
        }
        true
    }

    /// The number of keys smaller than `key`.
    pub fn rank(&self, key: &K) -> usize {
        if self.chunks.is_empty() {
            return 0;
        }
        let c = self.chunk_of(key);
        self.before[c] + self.chunks[c].partition_point(|k| k < key)
    }

    /// The key at position `i` (0 is the smallest).
    pub fn get(&self, i: usize) -> Option<K> {
        if i >= self.len {
            return None;
        }
        let c = self.before.partition_point(|b| *b <= i) - 1;
        self.chunks[c].get(i - self.before[c]).copied()
    }

    /// The keys at positions `from..to`, in order.
    pub fn range(&self, from: usize, to: usize) -> impl Iterator<Item = K> + '_ {
        let to = to.min(self.len);
        let start = if from < to {
            let c = self.before.partition_point(|b| *b <= from) - 1;
            Some((c, from - self.before[c]))
        } else {
            None
        };
        let mut left = to.saturating_sub(from);
        let mut at = start;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let (c, i) = at?;
            let key = self.chunks[c][i];
            left -= 1;
            at = if i + 1 < self.chunks[c].len() {
                Some((c, i + 1))
            } else {
                Some((c + 1, 0))
            };
            Some(key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranks, positions and ranges agree with a sorted vector through inserts and removals
    /// that split and empty chunks.
    #[test]
    fn agrees_with_a_sorted_vector() {
        let mut index = RankIndex::from_sorted((0..3000u64).map(|i| i * 2).collect());
        let mut model: Vec<u64> = (0..3000u64).map(|i| i * 2).collect();
        for i in 0..3000u64 {
            let k = (i * 7919) % 6500;
            if i % 3 == 0 {
                assert_eq!(index.remove(&k), model.binary_search(&k).is_ok());
                if let Ok(at) = model.binary_search(&k) {
                    model.remove(at);
                }
            } else {
                let fresh = model.binary_search(&k).is_err();
                assert_eq!(index.insert(k), fresh);
                if let Err(at) = model.binary_search(&k) {
                    model.insert(at, k);
                }
            }
        }
        assert_eq!(index.len(), model.len());
        for probe in [0u64, 1, 17, 999, 4001, 6499, 7000] {
            assert_eq!(index.rank(&probe), model.partition_point(|k| *k < probe));
        }
        for i in [0, 1, 500, model.len() - 1] {
            assert_eq!(index.get(i), Some(model[i]));
        }
        assert_eq!(index.get(model.len()), None);
        let got: Vec<u64> = index.range(1000, 1300).collect();
        assert_eq!(got, model[1000..1300]);
        assert_eq!(index.range(5, 5).count(), 0);
        for k in model.clone() {
            assert!(index.remove(&k));
        }
        assert!(index.is_empty() && index.rank(&3) == 0 && index.range(0, 9).count() == 0);
    }
}
