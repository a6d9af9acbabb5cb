import type { DescFile } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";

// TEMPORARY placeholder while the reflection service is being written.
export function registerReflectionServices(_router: ConnectRouter, _files: DescFile[]): void {}
