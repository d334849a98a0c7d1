// The S3 store's public parts: the store over a client built elsewhere (tests, the local servers),
// and the words for S3 errors that entry points still use.
export { createS3Client, retryS3Call, S3_CALL_ATTEMPTS, type S3Location, type S3RetryOptions } from "./client.js";
export { describeS3Error, explainS3Error, s3ErrorInfo } from "./errors.js";
export { S3Store, type S3StoreSettings } from "./store.js";
