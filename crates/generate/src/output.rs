//! Where generated rows go: binary COPY chunks sent to the loading tasks (a
//! bounded channel per table, so memory stays flat however large the
//! dataset), or CSV files.

use super::encode::{Binary, Csv, BINARY_HEADER, BINARY_TRAILER};
use super::rows::{Row, RowWriter, Table};
use bytes::Bytes;
use std::io::Write;

/// Where one table's COPY bytes go: the loader of that table.
pub type RowSender = tokio::sync::mpsc::Sender<Bytes>;

/// Bytes handed to a loader at a time.
const CHUNK: usize = 256 * 1024;

struct Outlet {
    buf: Vec<u8>,
    to: tokio::sync::mpsc::Sender<Bytes>,
    /// False once the loader stopped listening (it failed): rows are dropped.
    open: bool,
}

impl Outlet {
    fn flush(&mut self) {
        if self.open && !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(
                &mut self.buf,
                Vec::with_capacity(CHUNK + 4096),
            ));
            self.open = self.to.blocking_send(chunk).is_ok();
        }
        self.buf.clear();
    }
}

/// Binary COPY streams, one per loaded table (tables without a loader are skipped).
pub struct CopyStreams {
    outlets: Vec<Option<Outlet>>,
    pub rows: [u64; 10],
}

impl CopyStreams {
    /// For each table, the sender of its loader, if it is loaded.
    pub fn new(senders: Vec<(Table, RowSender)>) -> CopyStreams {
        let mut outlets: Vec<Option<Outlet>> = (0..Table::ALL.len()).map(|_| None).collect();
        for (table, to) in senders {
            let mut buf = Vec::with_capacity(CHUNK + 4096);
            buf.extend_from_slice(BINARY_HEADER);
            outlets[table as usize] = Some(Outlet {
                buf,
                to,
                open: true,
            });
        }
        CopyStreams {
            outlets,
            rows: [0; 10],
        }
    }

    /// Sends what is left and the end-of-data markers.
    pub fn finish(mut self) {
        for o in self.outlets.iter_mut().flatten() {
            o.buf.extend_from_slice(BINARY_TRAILER);
            o.flush();
        }
    }
}

impl RowWriter for CopyStreams {
    fn row<R: Row>(&mut self, r: &R) {
        let Some(o) = &mut self.outlets[R::TABLE as usize] else {
            return;
        };
        self.rows[R::TABLE as usize] += 1;
        if !o.open {
            return;
        }
        Binary::row(&mut o.buf, r);
        if o.buf.len() >= CHUNK {
            o.flush();
        }
    }
}

/// A CSV file per table, with a header line: `<dir>/<table>.csv`.
pub struct CsvFiles {
    files: Vec<(std::io::BufWriter<std::fs::File>, Vec<u8>)>,
    pub rows: [u64; 10],
    /// The first write error, if any (later rows are dropped).
    pub error: Option<(std::path::PathBuf, std::io::Error)>,
    dir: std::path::PathBuf,
}

impl CsvFiles {
    pub fn create(dir: &std::path::Path) -> std::io::Result<CsvFiles> {
        std::fs::create_dir_all(dir)?;
        let mut files = Vec::new();
        for table in Table::ALL {
            let mut f = std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(dir.join(format!("{}.csv", table.name())))?,
            );
            let mut header = Vec::new();
            Csv::header(&mut header, table);
            f.write_all(&header)?;
            files.push((f, Vec::with_capacity(512)));
        }
        Ok(CsvFiles {
            files,
            rows: [0; 10],
            error: None,
            dir: dir.to_path_buf(),
        })
    }

    pub fn finish(mut self) -> Result<[u64; 10], (std::path::PathBuf, std::io::Error)> {
        for (i, (f, _)) in self.files.iter_mut().enumerate() {
            if let Err(e) = f.flush() {
                self.error
                    .get_or_insert((self.dir.join(format!("{}.csv", Table::ALL[i].name())), e));
            }
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.rows),
        }
    }
}

impl RowWriter for CsvFiles {
    fn row<R: Row>(&mut self, r: &R) {
        if self.error.is_some() {
            return;
        }
        let i = R::TABLE as usize;
        self.rows[i] += 1;
        let (f, line) = &mut self.files[i];
        line.clear();
        Csv::row(line, r);
        if let Err(e) = f.write_all(line) {
            self.error = Some((self.dir.join(format!("{}.csv", R::TABLE.name())), e));
        }
    }
}
