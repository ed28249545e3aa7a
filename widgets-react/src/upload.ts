/** Checks on an image file before its bytes go to Python (which checks them again). */
import { LIMITS } from "./contract";

const IMAGE_NAME = /\.(jpe?g|png|gif|bmp|webp)$/i;

/** Megabytes (MiB), rounded up to a tenth: a file over the limit never reads as it. */
function mb(bytes: number): string {
  return (Math.ceil((bytes * 10) / 2 ** 20) / 10).toFixed(1).replace(/\.0$/, "");
}

/** Why `file` cannot be a query (one line), or null when it can be sent. */
export function uploadProblem(file: File): string | null {
  if (!file.type.startsWith("image/") && !IMAGE_NAME.test(file.name)) return `${file.name} is not an image file`;
  if (file.size > LIMITS.max_upload_bytes) {
    return `${file.name}: image file too large: ${mb(file.size)} MB (at most ${mb(LIMITS.max_upload_bytes)} MB)`;
  }
  return null;
}
