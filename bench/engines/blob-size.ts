/** Size of the stub origin's artifact (GET /blob), in MiB. */
export const BLOB_MIB = 128;
