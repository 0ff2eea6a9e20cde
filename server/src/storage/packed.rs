//! Packed reads: whole tables of ids read at start in a few hundred rows instead of one row
//! each. On SQLite every row of a result crosses from the connection's worker thread to the
//! caller with a wake-up of its own; reading the 600,000 rows of dossiers, persons and documents
//! of 100,000 dossiers that way was most of a 3.9 s cold start (BENCHMARKS.md, (e)). The
//! database joins the rows of each group into one text (`group_concat`, `string_agg`), with the
//! ASCII unit and record separators between columns and rows; the ids, keys and statuses read
//! this way never hold them, and a row that splits into the wrong number of columns is refused
//! as corrupt, never read as another row.

use sqlx::Row;

use super::{Result, StorageError, Store};

/// Between the columns of one row.
const UNIT: char = '\u{1f}';
/// Between rows.
const RECORD: char = '\u{1e}';

/// The packed rows of one read: each chunk holds the rows of one group.
pub(super) struct Packed<const N: usize> {
    table: &'static str,
    chunks: Vec<String>,
}

impl<const N: usize> Packed<N> {
    /// Every row, its `N` columns in the order they were asked for.
    pub(super) fn rows(&self) -> impl Iterator<Item = Result<[&str; N]>> + '_ {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.split(RECORD))
            .map(|row| {
                let mut parts = row.split(UNIT);
                let columns: [Option<&str>; N] = std::array::from_fn(|_| parts.next());
                match (columns.iter().all(Option::is_some), parts.next()) {
                    (true, None) => Ok(columns.map(|c| c.unwrap_or_default())),
                    _ => Err(StorageError::Corrupt {
                        table: self.table,
                        detail: "a packed row has the wrong number of columns".into(),
                    }),
                }
            })
    }
}

impl Store {
    /// Every row of the text `columns` (none of them `NULL`) of `table`, grouped by the first
    /// two characters of `bucket` (a UUID column: at most 256 groups).
    pub(super) async fn packed<const N: usize>(
        &self,
        table: &'static str,
        columns: [&str; N],
        bucket: &str,
    ) -> Result<Packed<N>> {
        let joined = columns.join(&format!(" || '{UNIT}' || "));
        let sql = format!(
            "SELECT {agg}({joined}, '{RECORD}') FROM {table} GROUP BY substr({bucket}, 1, 2)",
            agg = self.dialect.string_agg(),
        );
        let chunks = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        Ok(Packed { table, chunks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed<const N: usize>(chunks: &[&str]) -> Packed<N> {
        Packed {
            table: "t",
            chunks: chunks
                .iter()
                .map(|c| c.replace('|', "\u{1f}").replace(';', "\u{1e}"))
                .collect(),
        }
    }

    #[test]
    fn every_row_of_every_chunk_comes_back_with_its_columns_in_order() {
        let read = packed::<2>(&["a|1;b|2", "c|3"]);
        let rows: Vec<[&str; 2]> = read.rows().collect::<Result<_>>().unwrap();
        assert_eq!(rows, [["a", "1"], ["b", "2"], ["c", "3"]]);
    }

    #[test]
    fn a_row_with_a_column_too_many_or_too_few_is_corrupt() {
        for chunk in ["a|1|x", "a", "a|1;b"] {
            let packed = packed::<2>(&[chunk]);
            let read: Result<Vec<[&str; 2]>> = packed.rows().collect();
            assert!(
                matches!(read, Err(StorageError::Corrupt { table: "t", .. })),
                "{chunk:?} was read as {read:?}"
            );
        }
    }
}
