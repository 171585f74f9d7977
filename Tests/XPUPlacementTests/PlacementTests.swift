import Testing

@Test func placementPlaceholder() {}
