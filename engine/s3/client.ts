// Moved to engine/storage/s3/ (issue 21). Kept only while modules not yet ported to the ObjectStore seam import it from here.
export { createS3Client, retryS3Call, unsignedPayload, S3_CALL_ATTEMPTS, type S3Location, type S3RetryOptions } from "../storage/s3/client.js";
export { describeS3Error, explainS3Error, isMissingObject, s3ErrorInfo } from "../storage/s3/errors.js";
