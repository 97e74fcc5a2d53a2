/**
 * trainctl's client API: typed functions over a `@temporalio/client` Client to start, watch,
 * query, update and cancel every trainctl workflow. One module per workflow family; each
 * validates its input with the family's contract (`src/contracts/`) before it contacts the server.
 *
 * @module
 */
export { connect } from './connect.js';
export * as volume from './volume.js';
export * as prewarm from './prewarm.js';
export * as cost from './cost.js';
export * as cleanup from './cleanup.js';
export * as run from './run.js';
export * as transfer from './transfer.js';
