// Moved to engine/storage/s3/ (issue 21). Kept only while modules not yet ported to the ObjectStore seam import it from here.
export { checkBucketExists } from "../storage/s3/container.js";
export { isNoSuchBucket } from "../storage/s3/errors.js";
