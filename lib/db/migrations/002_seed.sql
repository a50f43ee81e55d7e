-- The sample data of the legacy init.sql. Keyed on natural values rather than on serial ids,
-- so it is idempotent even on a database where rows were added before it ran.
INSERT INTO users (username, email) VALUES
    ('user1', 'user1@example.com'),
    ('user2', 'user2@example.com'),
    ('user3', 'user3@example.com')
ON CONFLICT DO NOTHING;

INSERT INTO movies (title, description, rating)
SELECT v.title, v.description, v.rating
FROM (VALUES
    (1, 'The Shawshank Redemption', 'Two imprisoned men bond over a number of years, finding solace and eventual redemption through acts of common decency.', 9.3),
    (2, 'The Godfather', 'The aging patriarch of an organized crime dynasty transfers control of his clandestine empire to his reluctant son.', 9.2),
    (3, 'The Dark Knight', 'When the menace known as the Joker wreaks havoc and chaos on the people of Gotham, Batman must accept one of the greatest psychological and physical tests of his ability to fight injustice.', 9.0),
    (4, 'Pulp Fiction', 'The lives of two mob hitmen, a boxer, a gangster and his wife, and a pair of diner bandits intertwine in four tales of violence and redemption.', 8.9),
    (5, 'Forrest Gump', 'The presidencies of Kennedy and Johnson, the Vietnam War, the Watergate scandal and other historical events unfold from the perspective of an Alabama man with an IQ of 75, whose only desire is to be reunited with his childhood sweetheart.', 8.8)
) AS v(ord, title, description, rating)
WHERE NOT EXISTS (SELECT 1 FROM movies m WHERE m.title = v.title)
ORDER BY v.ord;

INSERT INTO movie_genres (movie_id, genre)
SELECT m.id, g.genre
FROM (VALUES
    ('The Shawshank Redemption', 'Drama'),
    ('The Godfather', 'Crime'),
    ('The Godfather', 'Drama'),
    ('The Dark Knight', 'Action'),
    ('The Dark Knight', 'Crime'),
    ('The Dark Knight', 'Drama'),
    ('Pulp Fiction', 'Crime'),
    ('Pulp Fiction', 'Drama'),
    ('Forrest Gump', 'Drama'),
    ('Forrest Gump', 'Romance')
) AS g(title, genre)
JOIN movies m ON m.title = g.title
ON CONFLICT DO NOTHING;

INSERT INTO payments (user_id, amount)
SELECT u.id, p.amount
FROM (VALUES ('user1', 9.99), ('user2', 14.99), ('user3', 19.99)) AS p(username, amount)
JOIN users u ON u.username = p.username
WHERE NOT EXISTS (SELECT 1 FROM payments x WHERE x.user_id = u.id);

INSERT INTO subscriptions (user_id, plan_type, start_date, end_date)
SELECT u.id, s.plan_type, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP + INTERVAL '30 days'
FROM (VALUES ('user1', 'basic'), ('user2', 'premium'), ('user3', 'family')) AS s(username, plan_type)
JOIN users u ON u.username = s.username
WHERE NOT EXISTS (SELECT 1 FROM subscriptions x WHERE x.user_id = u.id);
