-- catalog-db: the movies service's own store. Only the catalog's tables, with the legacy's
-- column types (the API answers the same JSON from either store); no seed: a new catalog-db is
-- filled by replication (the movie-state topic, docs/architecture.md). The outbox and the
-- replication bookkeeping are the shared files 003_outbox.sql, 004_movie_replication.sql and
-- 005_outbox_trace_context.sql.
CREATE TABLE IF NOT EXISTS movies (
    id SERIAL PRIMARY KEY,
    title VARCHAR(255) NOT NULL,
    description TEXT,
    rating DECIMAL(3, 1) CHECK (rating >= 0 AND rating <= 10),
    release_date DATE,
    duration INTEGER,
    poster_url VARCHAR(255),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS movie_genres (
    movie_id INTEGER REFERENCES movies(id) ON DELETE CASCADE,
    genre VARCHAR(50) NOT NULL,
    PRIMARY KEY (movie_id, genre)
);

CREATE INDEX IF NOT EXISTS idx_movies_title ON movies(title);
CREATE INDEX IF NOT EXISTS idx_movie_genres_movie_id ON movie_genres(movie_id);
