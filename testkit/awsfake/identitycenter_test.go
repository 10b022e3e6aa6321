package awsfake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	idstypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/tokken/tokken/testkit/awsfake"
)

func TestIdentityCenterAssignmentLifecycle(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	ic := f.IdentityCenter()
	in := ic.AddInstance(awsfake.IDCInstance{})
	user := ic.AddUser(awsfake.IDCUser{UserName: "alice", Email: "alice@example.com"})
	ps := ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "Admin", SessionDuration: "PT4H"})
	sso := ssoadmin.NewFromConfig(f.Config(ctx))

	li, err := sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil || len(li.Instances) != 1 || aws.ToString(li.Instances[0].InstanceArn) != in.ARN ||
		aws.ToString(li.Instances[0].IdentityStoreId) != in.IdentityStoreID {
		t.Fatalf("ListInstances = %+v, %v", li, err)
	}
	dp, err := sso.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(ps)})
	if err != nil || aws.ToString(dp.PermissionSet.Name) != "Admin" || aws.ToString(dp.PermissionSet.SessionDuration) != "PT4H" {
		t.Fatalf("DescribePermissionSet = %+v, %v", dp, err)
	}

	create := &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: aws.String(in.ARN), TargetId: aws.String("210987654321"), TargetType: ssotypes.TargetTypeAwsAccount,
		PermissionSetArn: aws.String(ps), PrincipalType: ssotypes.PrincipalTypeUser, PrincipalId: aws.String(user),
	}
	want := awsfake.IDCAssignment{Account: "210987654321", PermissionSetARN: ps, PrincipalType: "USER", PrincipalID: user}
	ic.SetPending(2)
	out, err := sso.CreateAccountAssignment(ctx, create)
	if err != nil || out.AccountAssignmentCreationStatus.Status != ssotypes.StatusValuesInProgress {
		t.Fatalf("CreateAccountAssignment = %+v, %v", out, err)
	}
	id := out.AccountAssignmentCreationStatus.RequestId
	// A second write to the same assignment conflicts while the first runs.
	var ce *ssotypes.ConflictException
	if _, err := sso.CreateAccountAssignment(ctx, create); !errors.As(err, &ce) {
		t.Fatalf("concurrent create: %v, want ConflictException", err)
	}
	for i, wantStatus := range []ssotypes.StatusValues{"IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED", "SUCCEEDED"} {
		if i == 2 && ic.HasAssignment(want) {
			t.Fatal("the assignment exists while its creation is in progress")
		}
		st, err := sso.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
			InstanceArn: aws.String(in.ARN), AccountAssignmentCreationRequestId: id,
		})
		if err != nil || st.AccountAssignmentCreationStatus.Status != wantStatus {
			t.Fatalf("status call %d = %+v, %v; want %s", i, st, err, wantStatus)
		}
	}
	if !ic.HasAssignment(want) {
		t.Fatal("no assignment after SUCCEEDED")
	}
	la, err := sso.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{
		InstanceArn: aws.String(in.ARN), AccountId: aws.String("210987654321"), PermissionSetArn: aws.String(ps),
	})
	if err != nil || len(la.AccountAssignments) != 1 || aws.ToString(la.AccountAssignments[0].PrincipalId) != user {
		t.Fatalf("ListAccountAssignments = %+v, %v", la, err)
	}
	if _, err := sso.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{
		InstanceArn: aws.String(in.ARN), AccountId: aws.String("210987654321"), PermissionSetArn: aws.String(ps), NextToken: aws.String("bogus"),
	}); err == nil {
		t.Error("a bogus NextToken was accepted")
	}

	// A deletion that fails reports its reason and leaves the assignment.
	ic.SetPending(0)
	ic.FailNext("DeleteAccountAssignment", 1, "Received a 409 status error")
	del, err := sso.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{
		InstanceArn: create.InstanceArn, TargetId: create.TargetId, TargetType: create.TargetType,
		PermissionSetArn: create.PermissionSetArn, PrincipalType: create.PrincipalType, PrincipalId: create.PrincipalId,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sso.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
		InstanceArn: aws.String(in.ARN), AccountAssignmentDeletionRequestId: del.AccountAssignmentDeletionStatus.RequestId,
	})
	if err != nil || st.AccountAssignmentDeletionStatus.Status != ssotypes.StatusValuesFailed ||
		aws.ToString(st.AccountAssignmentDeletionStatus.FailureReason) != "Received a 409 status error" || !ic.HasAssignment(want) {
		t.Fatalf("failed deletion status = %+v, %v", st.AccountAssignmentDeletionStatus, err)
	}
	// The creation request id is not a deletion request.
	var nf *ssotypes.ResourceNotFoundException
	if _, err := sso.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
		InstanceArn: aws.String(in.ARN), AccountAssignmentDeletionRequestId: id,
	}); !errors.As(err, &nf) {
		t.Errorf("deletion status of a creation request: %v, want ResourceNotFoundException", err)
	}
}

func TestIdentityStoreErrorsAreShapedLikeAWS(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	ic := f.IdentityCenter()
	in := ic.AddInstance(awsfake.IDCInstance{})
	user := ic.AddUser(awsfake.IDCUser{UserName: "alice", Email: "alice@example.com"})
	group := ic.AddGroup(awsfake.IDCGroup{DisplayName: "Ops"})
	ids := identitystore.NewFromConfig(f.Config(ctx))

	byEmail := func(email string) *identitystore.GetUserIdInput {
		return &identitystore.GetUserIdInput{IdentityStoreId: aws.String(in.IdentityStoreID),
			AlternateIdentifier: &idstypes.AlternateIdentifierMemberUniqueAttribute{Value: idstypes.UniqueAttribute{
				AttributePath: aws.String("emails.value"), AttributeValue: document.NewLazyDocument(email)}}}
	}
	got, err := ids.GetUserId(ctx, byEmail("alice@example.com"))
	if err != nil || aws.ToString(got.UserId) != user {
		t.Fatalf("GetUserId = %+v, %v", got, err)
	}
	_, err = ids.GetUserId(ctx, byEmail("nobody@example.com"))
	var nf *idstypes.ResourceNotFoundException
	if !errors.As(err, &nf) || nf.ResourceType != idstypes.ResourceTypeUser || nf.ErrorMessage() != "USER not found." {
		t.Fatalf("GetUserId of nobody: %#v, want ResourceNotFoundException for a USER", err)
	}
	in2 := byEmail("alice@example.com")
	in2.IdentityStoreId = aws.String("d-0000000000")
	if _, err := ids.GetUserId(ctx, in2); !errors.As(err, &nf) || nf.ResourceType != idstypes.ResourceTypeIdentityStore {
		t.Fatalf("GetUserId in an unknown store: %v, want ResourceNotFoundException for the IDENTITY_STORE", err)
	}

	member := &idstypes.MemberIdMemberUserId{Value: user}
	cm, err := ids.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), GroupId: aws.String(group), MemberId: member})
	if err != nil || !ic.IsMember(group, user) {
		t.Fatalf("CreateGroupMembership = %+v, %v", cm, err)
	}
	var ce *idstypes.ConflictException
	if _, err := ids.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), GroupId: aws.String(group), MemberId: member,
	}); !errors.As(err, &ce) || ce.Reason != idstypes.ConflictExceptionReasonUniquenessConstraintViolation {
		t.Fatalf("second CreateGroupMembership: %v, want a uniqueness ConflictException", err)
	}
	res, err := ids.IsMemberInGroups(ctx, &identitystore.IsMemberInGroupsInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), MemberId: member, GroupIds: []string{group, "other"}})
	if err != nil || len(res.Results) != 2 || !res.Results[0].MembershipExists || res.Results[1].MembershipExists {
		t.Fatalf("IsMemberInGroups = %+v, %v", res, err)
	}
	gm, err := ids.GetGroupMembershipId(ctx, &identitystore.GetGroupMembershipIdInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), GroupId: aws.String(group), MemberId: member})
	if err != nil || aws.ToString(gm.MembershipId) != aws.ToString(cm.MembershipId) {
		t.Fatalf("GetGroupMembershipId = %+v, %v", gm, err)
	}
	if _, err := ids.DeleteGroupMembership(ctx, &identitystore.DeleteGroupMembershipInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), MembershipId: cm.MembershipId}); err != nil || ic.IsMember(group, user) {
		t.Fatalf("DeleteGroupMembership: %v", err)
	}
	if _, err := ids.GetGroupMembershipId(ctx, &identitystore.GetGroupMembershipIdInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), GroupId: aws.String(group), MemberId: member,
	}); !errors.As(err, &nf) || nf.ResourceType != idstypes.ResourceTypeGroupMembership {
		t.Fatalf("GetGroupMembershipId after removal: %v, want ResourceNotFoundException for a GROUP_MEMBERSHIP", err)
	}
}
