// The part of oidc-provider's API the tests use (the package ships no types; its docs point to
// @types/oidc-provider, which this repository does not install for two calls).
declare module 'oidc-provider' {
  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>)
    /** A request handler for node:http (discovery, JWKS and the other endpoints). */
    callback(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<void>
  }
}
