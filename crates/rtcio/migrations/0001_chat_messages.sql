-- Chat history (rtcio::history). The same SQL runs on SQLite and PostgreSQL.
-- `id` is the server-generated, time-ordered message id (milliseconds << 16 |
-- sequence); the primary key serves "the latest N of a room before id X".
CREATE TABLE IF NOT EXISTS chat_messages (
    room_id TEXT NOT NULL,
    id BIGINT NOT NULL,
    from_id TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (room_id, id)
);

-- Age-based retention deletes by time across rooms.
CREATE INDEX IF NOT EXISTS chat_messages_at ON chat_messages (at);
