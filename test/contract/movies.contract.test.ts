// GET/POST /api/movies on both services that serve it: what the legacy answered, row by row
// (docs/contract.md, "Movies"; the table is in movie-cases.ts).
import { describeContract } from './contract-harness.ts'
import { movieCases, moviesEndpoint } from './movie-cases.ts'

describeContract(moviesEndpoint, movieCases)
