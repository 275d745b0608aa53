// Prints one line per tensor, "name type [rows, cols]" (row-major, outermost first), as read by
// @huggingface/gguf: an implementation independent of Lathe's reader and writer.
import { gguf } from "@huggingface/gguf";

const GGML_TYPES = { 0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 30: "BF16" };
const { tensorInfos } = await gguf(process.argv[2], { allowLocalFile: true });
for (const t of tensorInfos) {
  const shape = t.shape.map(Number).reverse();
  if (shape.length === 1) shape.unshift(1); // Lathe lists a 1-D tensor as a one-row matrix
  const type = GGML_TYPES[t.dtype] ?? `type${t.dtype}`;
  console.log(`${t.name} ${type} [${shape.join(", ")}]`);
}
