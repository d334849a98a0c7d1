import { S3Store } from "../../engine/storage/s3/store.js";
import { s3For, sharedEnv } from "../support/env.js";
import { describeStoreContract } from "./contract.js";

// The S3 store on the shared real S3 server (SeaweedFS by default, VRB_S3_SERVER=moto for the
// other): the shared contract, in the shared bucket, which has versioning and Object Lock.
// S3-specific behaviour (part checksums, SSE-KMS, multipart clean-up after a failed backup) is
// tested through the backup: test/integration/{upload-checksum,backup-sse,concurrent-backups}.test.ts.

describeStoreContract(
  "s3 (the shared S3 server)",
  async () => {
    const env = sharedEnv();
    return { store: new S3Store({ client: s3For(env), bucket: env.bucket!, prefix: "contract-s3/" }), stop: async () => undefined };
  },
  {
    versions: true,
    lock: true,
    legalHold: true,
    presign: true,
    containerField: "destination.bucket",
    listPageSize: 1000,
    growingParts: true,
    secrets: [sharedEnv().s3!.secretAccessKey],
  },
);
