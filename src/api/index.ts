/**
 * trainctl's client API: typed functions over a `@temporalio/client` Client to start, watch,
 * query, update and cancel every trainctl workflow. One module per workflow family; each
 * validates its input with the family's contract (`src/contracts/`) before it contacts the server.
 *
 * @module
 */
export { connect } from './connect.js';
export * as transfer from './transfer.js';
