"""Runtimes around the pipeline: Lambda on SQS, a long-running SQS worker (ECS), and in-process."""
