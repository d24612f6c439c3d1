/**
 * The IAM policies `scar aws-policy` prints: what the function's execution role needs (and its trust
 * policy), and what the user who runs `scar init/rm/ls/run/log` needs. They list exactly the calls
 * the modules of this folder make, so a user can start from least privilege.
 */

export interface PolicyScope {
  /** The execution role's ARN, when known (scar.cfg's aws.iam.role): PassRole is limited to it. */
  role?: string;
  /** Adds what batch / lambda-batch functions need. */
  batch?: boolean;
}

type Statement = {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string | string[];
  Condition?: unknown;
};
export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

const doc = (Statement: Statement[]): PolicyDocument => ({ Version: "2012-10-17", Statement });

/** Lambda assumes the role; nobody else. */
export function roleTrustPolicy(): Record<string, unknown> {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "LambdaAssumesTheRole",
        Effect: "Allow",
        Principal: { Service: "lambda.amazonaws.com" },
        Action: "sts:AssumeRole",
      },
    ],
  };
}

/** What the function itself does: write its log, read inputs, write outputs, hand work to Batch. */
export function rolePolicy(scope: PolicyScope = {}): PolicyDocument {
  return doc([
    {
      Sid: "WriteItsLog",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: "arn:aws:logs:*:*:log-group:/aws/lambda/*:*",
    },
    {
      Sid: "ReadInputsWriteOutputs",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
      Resource: ["arn:aws:s3:::*", "arn:aws:s3:::*/*"],
    },
    ...(scope.batch
      ? [{ Sid: "DelegateToBatch", Effect: "Allow" as const, Action: ["batch:SubmitJob"], Resource: "*" }]
      : []),
  ]);
}

/** What the deploying user's calls need (src/targets/aws/*.ts and the image push). */
export function userPolicy(scope: PolicyScope = {}): PolicyDocument {
  const passRoles = [scope.role ?? "arn:aws:iam::*:role/*"];
  if (scope.batch)
    passRoles.push(
      "arn:aws:iam::*:role/service-role/AWSBatchServiceRole",
      "arn:aws:iam::*:role/ecsInstanceRole",
    );
  return doc([
    {
      Sid: "Functions",
      Effect: "Allow",
      Action: [
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:DeleteFunction",
        "lambda:AddPermission",
        "lambda:InvokeFunction",
        "lambda:ListFunctions",
        "lambda:ListTags",
        "lambda:TagResource",
      ],
      Resource: "*",
    },
    {
      Sid: "PassTheRole",
      Effect: "Allow",
      Action: ["iam:PassRole"],
      Resource: passRoles,
    },
    {
      Sid: "OwnerTag",
      Effect: "Allow",
      Action: ["iam:GetUser"],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, filled in by IAM
      Resource: "arn:aws:iam::*:user/${aws:username}",
    },
    {
      Sid: "Logs",
      Effect: "Allow",
      Action: [
        "logs:CreateLogGroup",
        "logs:TagResource",
        "logs:PutRetentionPolicy",
        "logs:DeleteLogGroup",
        "logs:FilterLogEvents",
      ],
      Resource: ["arn:aws:logs:*:*:log-group:/aws/lambda/*", "arn:aws:logs:*:*:log-group:/aws/batch/job:*"],
    },
    {
      Sid: "Buckets",
      Effect: "Allow",
      Action: [
        "s3:CreateBucket",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:GetBucketNotification",
        "s3:PutBucketNotification",
      ],
      Resource: ["arn:aws:s3:::*", "arn:aws:s3:::*/*"],
    },
    {
      Sid: "FunctionImages",
      Effect: "Allow",
      Action: [
        "ecr:GetAuthorizationToken",
        "ecr:CreateRepository",
        "ecr:DescribeRepositories",
        "ecr:DeleteRepository",
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:SetRepositoryPolicy",
      ],
      Resource: "*",
    },
    {
      Sid: "HttpEndpoints",
      Effect: "Allow",
      Action: ["apigateway:POST", "apigateway:GET", "apigateway:PUT", "apigateway:DELETE"],
      Resource: [
        "arn:aws:apigateway:*::/restapis",
        "arn:aws:apigateway:*::/restapis/*",
        "arn:aws:apigateway:*::/tags/*",
      ],
    },
    ...(scope.batch
      ? [
          {
            Sid: "Batch",
            Effect: "Allow" as const,
            Action: [
              "batch:CreateComputeEnvironment",
              "batch:UpdateComputeEnvironment",
              "batch:DeleteComputeEnvironment",
              "batch:DescribeComputeEnvironments",
              "batch:CreateJobQueue",
              "batch:UpdateJobQueue",
              "batch:DeleteJobQueue",
              "batch:DescribeJobQueues",
              "batch:RegisterJobDefinition",
              "batch:DeregisterJobDefinition",
              "batch:DescribeJobDefinitions",
              "batch:DescribeJobs",
              "batch:TagResource",
            ],
            Resource: "*",
          },
        ]
      : []),
  ]);
}
