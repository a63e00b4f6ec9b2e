-- Saved contact filters, for naming an audience (PostgreSQL). Keep in step with ../sqlite/.
CREATE TABLE saved_filters (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    search TEXT NOT NULL,
    created_by UUID NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL
);
