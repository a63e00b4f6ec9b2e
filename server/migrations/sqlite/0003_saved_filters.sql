-- Saved contact filters, for naming an audience (SQLite). Keep in step with ../postgres/.
CREATE TABLE saved_filters (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    search TEXT NOT NULL,
    created_by BLOB NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL
);
