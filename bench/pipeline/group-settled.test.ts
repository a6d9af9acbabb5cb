import { expect } from "chai";
import { groupSettled } from "./group-settled.js";

describe("groupSettled", () => {
  it("when a member has not joined yet, then the group has not settled", () => {
    expect(groupSettled([{ t: [0, 1, 2] }, undefined], "t", 3)).to.equal(false);
  });

  it("when the members' assignments split the partitions, then it has settled", () => {
    expect(groupSettled([{ t: [0, 2] }, { t: [1] }], "t", 3)).to.equal(true);
  });

  it("when a member still shows its partitions from before a rebalance, then it has not settled", () => {
    expect(groupSettled([{ t: [0, 1, 2] }, { t: [1] }], "t", 3)).to.equal(false);
  });

  it("when a partition is nobody's, then it has not settled", () => {
    expect(groupSettled([{ t: [0] }, { t: [1] }], "t", 3)).to.equal(false);
  });

  it("when there are more members than partitions, then the idle ones hold none", () => {
    expect(groupSettled([{ t: [0] }, { t: [] }, {}], "t", 1)).to.equal(true);
  });

  it("counts only the input topic", () => {
    expect(groupSettled([{ other: [0, 1, 2] }], "t", 3)).to.equal(false);
  });
});
