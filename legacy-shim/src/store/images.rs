//! Images: stored as BLOBs with their type, size and a SHA-256 (the strong ETag).

use rusqlite::{OptionalExtension, Row, params};
use sha2::{Digest, Sha256};

use super::{IdKind, Store};

/// What is known about a stored image without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageMeta {
    pub(crate) id: String,
    pub(crate) content_type: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Hex SHA-256 of the bytes: the image's strong ETag.
    pub(crate) sha256: String,
    pub(crate) created_at: String,
}

/// An image and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct StoredImage {
    pub(crate) meta: ImageMeta,
    pub(crate) data: Vec<u8>,
}

fn meta_from_row(row: &Row<'_>) -> rusqlite::Result<ImageMeta> {
    Ok(ImageMeta {
        id: row.get(0)?,
        content_type: row.get(1)?,
        width: row.get(2)?,
        height: row.get(3)?,
        sha256: row.get(4)?,
        created_at: row.get(5)?,
    })
}

impl Store {
    /// Store an already-validated image under a new id.
    pub(crate) fn insert_image(
        &self,
        content_type: &str,
        width: u32,
        height: u32,
        data: &[u8],
    ) -> rusqlite::Result<ImageMeta> {
        let conn = self.conn();
        let id = self.next_id(&conn, IdKind::Image)?;
        self.insert_image_as(&conn, &id, content_type, width, height, data)
    }

    /// Store an image under a given id (seed images have fixed ids).
    pub(super) fn insert_image_as(
        &self,
        conn: &rusqlite::Connection,
        id: &str,
        content_type: &str,
        width: u32,
        height: u32,
        data: &[u8],
    ) -> rusqlite::Result<ImageMeta> {
        let meta = ImageMeta {
            id: id.to_owned(),
            content_type: content_type.to_owned(),
            width,
            height,
            sha256: hex::encode(Sha256::digest(data)),
            created_at: self.clock.timestamp(),
        };
        conn.execute(
            "INSERT INTO images (id, content_type, width, height, sha256, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                meta.id,
                meta.content_type,
                meta.width,
                meta.height,
                meta.sha256,
                data,
                meta.created_at
            ],
        )?;
        Ok(meta)
    }

    /// An image and its bytes, if the id exists.
    pub(crate) fn image(&self, id: &str) -> rusqlite::Result<Option<StoredImage>> {
        self.conn()
            .query_row(
                "SELECT id, content_type, width, height, sha256, created_at, data
                 FROM images WHERE id = ?1",
                [id],
                |row| {
                    Ok(StoredImage {
                        meta: meta_from_row(row)?,
                        data: row.get(6)?,
                    })
                },
            )
            .optional()
    }
}
