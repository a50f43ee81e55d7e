// The movies' parity declaration (lib/parity/sql-parity.ts): a movie's canonical JSON is the
// API's answer, built in SQL byte for byte as JSON.stringify builds it from SELECT_MOVIES
// (movie-repository.ts): the legacy field order, genres sorted as the list sorts them, the
// rating a JSON number. Whole-table statements join the genres aggregated once per movie
// (one pass) instead of looking them up movie by movie.
import type { ParityDeclaration } from '../parity/sql-parity.ts'

const documentWith = (genres: string) => `'{"id":' || m.id
    || ',"title":' || to_json(m.title)::text
    || ',"description":' || to_json(COALESCE(m.description, ''))::text
    || ',"genres":' || COALESCE(${genres}, '[]')
    || ',"rating":' || to_json(COALESCE(m.rating, 0)::float8)::text
    || '}'`

export const MOVIE_PARITY: ParityDeclaration = {
  table: 'movies',
  alias: 'm',
  key: 'm.id',
  keyType: 'integer',
  document: documentWith('(SELECT array_to_json(array_agg(g.genre ORDER BY g.genre)) FROM movie_genres g WHERE g.movie_id = m.id)::text'),
  scan: {
    joins: `LEFT JOIN (SELECT movie_id, array_to_json(array_agg(genre ORDER BY genre))::text AS genres FROM movie_genres GROUP BY movie_id) mg ON mg.movie_id = m.id`,
    document: documentWith('mg.genres'),
  },
}
