import { Model, snakeCaseMappers } from "objection";

/**
 * A row of the products table. Columns are snake_case in the database and camelCase here.
 * Timestamps are RFC 3339 text with microseconds, amount is a decimal string (see database.ts).
 */
export class ProductRow extends Model {
  static override tableName = "products";
  static override get columnNameMappers() {
    return snakeCaseMappers();
  }

  id!: string;
  name!: string;
  description!: string;
  amount!: string;
  currency!: string;
  quantity!: number;
  availabilityAt!: string;
  category!: string;
  version!: number;
  createdAt!: string;
  updatedAt!: string;
  /** The Kafka position of the write the row holds; null for a direct write. The offset is text (it may pass 2^53). */
  sourceTopic?: string | null;
  sourcePartition?: number | null;
  sourceOffset?: string | null;
}
