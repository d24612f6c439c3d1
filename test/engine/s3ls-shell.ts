/**
 * A busybox shell function that lists a bucket of the embedded store with the key pair a function
 * finds in its environment (function-keys.test.ts, cli/emulate.test.ts): the applets it needs are
 * S3LS_APPLETS.
 */
export const S3LS_APPLETS = [
  "sh",
  "echo",
  "printf",
  "awk",
  "xxd",
  "sha256sum",
  "cut",
  "tr",
  "date",
  "nc",
  "head",
  "grep",
];

/**
 * ListObjectsV2 signed with SigV4 by a busybox shell (sha256sum, xxd, awk, nc), with the key pair
 * and endpoint the function finds in its environment: prints "<bucket>: <status line> <code or keys>".
 */
export const S3LS = `# s3ls BUCKET: ListObjectsV2 signed with SigV4 from $AWS_* (busybox only: sha256sum, xxd, nc)
unhex() { xxd -r -p; }
hmac() {
  pads=$(echo "$1" | awk '{ k = $0; while (length(k) < 128) k = k "00"; h = "0123456789abcdef"
    for (i = 1; i <= 128; i += 2) { b = (index(h, substr(k, i, 1)) - 1) * 16 + index(h, substr(k, i + 1, 1)) - 1
      ip = ip sprintf("%02x", xor(b, 54)); op = op sprintf("%02x", xor(b, 92)) }
    print ip " " op }')
  inner=$( { printf %s "\${pads% *}" | unhex; printf %s "$2"; } | sha256sum | cut -d' ' -f1)
  { printf %s "\${pads#* }" | unhex; printf %s "$inner" | unhex; } | sha256sum | cut -d' ' -f1
}
s3ls() {
  hostport=\${AWS_ENDPOINT_URL#http://}
  ts=$(date -u +%Y%m%dT%H%M%SZ); day=\${ts%%T*}
  ph=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  creq="GET
/$1
list-type=2
host:$hostport
x-amz-content-sha256:$ph
x-amz-date:$ts

host;x-amz-content-sha256;x-amz-date
$ph"
  scope="$day/$AWS_REGION/s3/aws4_request"
  sts="AWS4-HMAC-SHA256
$ts
$scope
$(printf %s "$creq" | sha256sum | cut -d' ' -f1)"
  k=$(printf %s "AWS4$AWS_SECRET_ACCESS_KEY" | xxd -p | tr -d '\\n')
  for part in "$day" "$AWS_REGION" s3 aws4_request; do k=$(hmac "$k" "$part"); done
  sig=$(hmac "$k" "$sts")
  printf 'GET /%s?list-type=2 HTTP/1.1\\r\\nHost: %s\\r\\nx-amz-content-sha256: %s\\r\\nx-amz-date: %s\\r\\nAuthorization: AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=%s\\r\\nConnection: close\\r\\n\\r\\n' \\
    "$1" "$hostport" "$ph" "$ts" "$AWS_ACCESS_KEY_ID" "$scope" "$sig" | nc "\${hostport%:*}" "\${hostport##*:}" > /tmp/s3ls.out
  status=$(head -n 1 /tmp/s3ls.out | tr -d '\\r')
  code=$(grep -o '<Code>[A-Za-z]*</Code>' /tmp/s3ls.out)
  keys=$(grep -o '<Key>[^<]*</Key>' /tmp/s3ls.out | tr -d '\\n')
  echo "$1: $status $code$keys"
}
`;
