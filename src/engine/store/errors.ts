/**
 * S3 errors: the code, HTTP status and message S3 itself uses, so clients (which switch on the code)
 * behave as they do against AWS.
 */
import { xmlDocument } from "./xml.js";

const STATUS_AND_MESSAGE: Record<string, [number, string]> = {
  AccessDenied: [403, "Access Denied"],
  // What S3 answers a refused CORS preflight (the message says why: bucket-cors.ts).
  AccessForbidden: [403, "CORSResponse: This CORS request is not allowed."],
  AuthorizationHeaderMalformed: [400, "The authorization header is malformed."],
  AuthorizationQueryParametersError: [400, "Error parsing the X-Amz-Credential parameter."],
  BadRequest: [400, "Bad Request"],
  BadDigest: [400, "The Content-MD5 you specified did not match what we received."],
  BucketAlreadyExists: [409, "The requested bucket name is not available."],
  BucketAlreadyOwnedByYou: [
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
  ],
  BucketNotEmpty: [409, "The bucket you tried to delete is not empty"],
  EntityTooLarge: [400, "Your proposed upload exceeds the maximum allowed size"],
  EntityTooSmall: [400, "Your proposed upload is smaller than the minimum allowed object size."],
  IncompleteBody: [
    400,
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
  ],
  // Not an AWS code (S3 never runs out of room): HTTP 507, the status defined for a full disk.
  InsufficientStorage: [507, "The store does not have enough free space."],
  InternalError: [500, "We encountered an internal error. Please try again."],
  InvalidAccessKeyId: [403, "The AWS Access Key Id you provided does not exist in our records."],
  InvalidArgument: [400, "Invalid Argument"],
  InvalidBucketName: [400, "The specified bucket is not valid."],
  InvalidDigest: [400, "The Content-MD5 you specified is not valid."],
  InvalidPart: [
    400,
    "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
  ],
  InvalidPartOrder: [
    400,
    "The list of parts was not in ascending order. Parts must be ordered by part number.",
  ],
  ConditionalRequestConflict: [409, "A conflicting operation occurred on this key; retry the request"],
  InvalidPartNumber: [416, "The requested partnumber is not satisfiable"],
  InvalidRange: [416, "The requested range is not satisfiable"],
  InvalidRequest: [400, "Invalid Request"],
  InvalidTag: [400, "The tag provided was not a valid tag."],
  InvalidStorageClass: [400, "The storage class you specified is not valid"],
  KeyTooLongError: [400, "Your key is too long"],
  MalformedXML: [
    400,
    "The XML you provided was not well-formed or did not validate against our published schema",
  ],
  MetadataTooLarge: [400, "Your metadata headers exceed the maximum allowed metadata size."],
  MaxMessageLengthExceeded: [400, "Your request was too big."],
  IllegalLocationConstraintException: [400, "The specified location-constraint is not valid"],
  MethodNotAllowed: [405, "The specified method is not allowed against this resource."],
  MissingContentLength: [411, "You must provide the Content-Length HTTP header."],
  MissingSecurityHeader: [400, "Your request is missing a required header."],
  NoSuchBucket: [404, "The specified bucket does not exist"],
  NoSuchKey: [404, "The specified key does not exist."],
  NoSuchTagSet: [404, "The TagSet does not exist"],
  NoSuchCORSConfiguration: [404, "The CORS configuration does not exist"],
  InvalidPolicyDocument: [
    400,
    "The content of the form does not meet the conditions specified in the policy document.",
  ],
  MalformedPOSTRequest: [400, "The body of your POST request is not well-formed multipart/form-data."],
  MaxPostPreDataLengthExceededError: [
    400,
    "Your POST request fields preceding the upload file were too large.",
  ],
  NoSuchUpload: [
    404,
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
  ],
  NotImplemented: [501, "A header you provided implies functionality that is not implemented"],
  NotModified: [304, "Not Modified"],
  PreconditionFailed: [412, "At least one of the pre-conditions you specified did not hold"],
  RequestTimeTooSkewed: [403, "The difference between the request time and the current time is too large."],
  SignatureDoesNotMatch: [
    403,
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
  ],
  XAmzContentSHA256Mismatch: [
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
  ],
};

export class S3Error extends Error {
  readonly status: number;
  /** Extra elements S3 adds to some errors (e.g. Key, BucketName, ArgumentName). */
  readonly extra: Record<string, string>;
  /** Response headers the error carries (a conditional GET's 304 and 412 have the ETag). */
  headers: Record<string, string> = {};

  constructor(
    readonly code: string,
    message?: string,
    extra: Record<string, string> = {},
  ) {
    const known = STATUS_AND_MESSAGE[code];
    super(message ?? known?.[1] ?? code);
    this.status = known?.[0] ?? 400;
    this.extra = extra;
  }

  /** The XML body S3 sends: <Error><Code/><Message/>...<Resource/><RequestId/></Error>. */
  toXml(resource: string, requestId: string): string {
    return xmlDocument("Error", {
      Code: this.code,
      Message: this.message,
      ...this.extra,
      Resource: resource,
      RequestId: requestId,
    });
  }
}

export const errors = {
  noSuchBucket: (bucket: string) => new S3Error("NoSuchBucket", undefined, { BucketName: bucket }),
  noSuchKey: (key: string) => new S3Error("NoSuchKey", undefined, { Key: key }),
  noSuchUpload: (uploadId: string) => new S3Error("NoSuchUpload", undefined, { UploadId: uploadId }),
};
