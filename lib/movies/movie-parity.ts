// The movies' parity declaration (lib/parity/sql-parity.ts): a movie's canonical JSON is the
// API's answer, built in SQL byte for byte as JSON.stringify builds it from SELECT_MOVIES
// (movie-repository.ts): the legacy field order, genres sorted as the list sorts them, the
// rating a JSON number.
import type { ParityDeclaration } from '../parity/sql-parity.ts'

export const MOVIE_PARITY: ParityDeclaration = {
  table: 'movies',
  alias: 'm',
  key: 'm.id',
  keyType: 'integer',
  document: `'{"id":' || m.id
    || ',"title":' || to_json(m.title)::text
    || ',"description":' || to_json(COALESCE(m.description, ''))::text
    || ',"genres":' || COALESCE((SELECT array_to_json(array_agg(g.genre ORDER BY g.genre)) FROM movie_genres g WHERE g.movie_id = m.id)::text, '[]')
    || ',"rating":' || to_json(COALESCE(m.rating, 0)::float8)::text
    || '}'`,
}
